// `cmstream run --embedded` as a child process of a benchmark, with a fresh admin key, killed
// when the benchmark ends (also when it dies on an error).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"

namespace cm::bench {

// A loopback port nobody listens on now.
inline int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class CmstreamProcess {
 public:
  // Runs `cmstream run --embedded --state-dir <dir>/state --http 127.0.0.1:<port> <flags>`,
  // logging to <dir>/cmstream.log, and waits until /ready answers 200.
  CmstreamProcess(const std::string& cmstream, const std::filesystem::path& dir,
                  const std::vector<std::string>& flags)
      : port_(FreePort()), log_((dir / "cmstream.log").string()) {
    std::vector<std::string> argv{cmstream,
                                  "run",
                                  "--embedded",
                                  "--state-dir",
                                  (dir / "state").string(),
                                  "--http",
                                  "127.0.0.1:" + std::to_string(port_)};
    argv.insert(argv.end(), flags.begin(), flags.end());
    // Every route but /health, /ready and /metrics needs a key: a fresh admin key for this run.
    FILE* token = ::popen((cmstream + " apikey token").c_str(), "r");
    char buf[128] = {0};
    if (token == nullptr || std::fgets(buf, sizeof buf, token) == nullptr)
      Die("apikey token failed");
    ::pclose(token);
    key_ = std::string(buf, std::strcspn(buf, "\n"));
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
    env.push_back("CM_ADMIN_KEY=" + key_);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      // Dies with the benchmark, also when it stops on an error (Die exits at once).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execve(args[0], args.data(), envp.data());
      ::_exit(127);
    }
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(1, 0);
    auto until = Clock::now() + std::chrono::seconds(90);
    while (Clock::now() < until) {
      auto r = c.Get("/ready");
      if (r && r->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    Die("cmstream did not become ready; see " + log_);
  }
  ~CmstreamProcess() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  CmstreamProcess(const CmstreamProcess&) = delete;
  CmstreamProcess& operator=(const CmstreamProcess&) = delete;

  int port() const { return port_; }
  const std::string& key() const { return key_; }
  const std::string& log() const { return log_; }
  // The embedded broker's address, from the child's log ("embedded_broker" event).
  std::string Bootstrap() const {
    std::ifstream f(log_);
    for (std::string line; std::getline(f, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j.value("event", "") == "embedded_broker")
        return j.value("bootstrap", "");
    }
    Die("no embedded_broker event in " + log_);
  }

 private:
  int port_;
  std::string log_;
  std::string key_;
  pid_t pid_ = -1;
};

}  // namespace cm::bench
