// `cmstream run` (and `cmstream broker`) as child processes of a benchmark, `run` with a fresh
// admin key; each is killed when the benchmark ends (also when it dies on an error).
#pragma once

#include <httplib.h>
#include <signal.h>
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
#include "tests/support/free_port.h"
#include "tests/support/spawn_logged.h"

namespace cm::bench {

using cm::testing::FreePort;

// Forks `argv` with `env` (empty: this process's), its output appended to `log`; the child
// dies with the benchmark, also when it stops on an error (Die exits at once).
inline pid_t SpawnLogged(std::vector<std::string> argv, const std::string& log,
                         std::vector<std::string> env = {}) {
  const pid_t pid =
      testing::SpawnLogged(std::move(argv), log, {.env = std::move(env), .die_with_parent = true});
  if (pid < 0) Die("fork failed");  // a pid of -1 would make the destructors kill(-1)
  return pid;
}

// A process's memory from /proc/<pid>/status in MiB: "VmRSS" (resident now) or "VmHWM" (the
// peak resident set); 0 if unknown.
inline double ProcessMemoryMib(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024;
  }
  return 0;
}

// `cmstream broker` with `topics` ("name:partitions"): the embedded broker in a process of its
// own, so that another process's resident set does not include it.
class BrokerProcess {
 public:
  BrokerProcess(const std::string& cmstream, const std::filesystem::path& dir,
                const std::vector<std::string>& topics) {
    const std::string info = (dir / "broker.json").string();
    std::vector<std::string> argv{cmstream, "broker", "--info-file", info};
    for (const auto& t : topics) {
      argv.push_back("--topic");
      argv.push_back(t);
    }
    pid_ = SpawnLogged(argv, (dir / "broker.log").string());
    // Read until it parses: the file may be seen before it is written whole.
    auto until = Clock::now() + std::chrono::seconds(30);
    for (;;) {
      auto endpoints = nlohmann::json::parse(std::ifstream(info), nullptr, false);
      if (endpoints.is_object() && endpoints.contains("admin")) {
        bootstrap_ = endpoints.value("bootstrap", "");
        admin_ = endpoints.value("admin", "");
        return;
      }
      if (Clock::now() > until) Die("cmstream broker wrote no " + info);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~BrokerProcess() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  BrokerProcess(const BrokerProcess&) = delete;
  BrokerProcess& operator=(const BrokerProcess&) = delete;

  const std::string& bootstrap() const { return bootstrap_; }
  // The `--broker-admin` of a `cmstream run` against it (the embedded broker has no Admin API).
  const std::string& admin() const { return admin_; }

 private:
  pid_t pid_ = -1;
  std::string bootstrap_;
  std::string admin_;
};

class CmstreamProcess {
 public:
  // Runs `cmstream run <broker> --state-dir <dir>/state --http 127.0.0.1:<port> <flags>`,
  // logging to <dir>/cmstream.log, and waits until /ready answers 200. `broker` is
  // `--embedded` or the `--brokers`/`--broker-admin` of a BrokerProcess.
  CmstreamProcess(const std::string& cmstream, const std::filesystem::path& dir,
                  const std::vector<std::string>& flags,
                  const std::vector<std::string>& broker = {"--embedded"})
      : port_(FreePort()), log_((dir / "cmstream.log").string()) {
    std::vector<std::string> argv{cmstream, "run"};
    argv.insert(argv.end(), broker.begin(), broker.end());
    for (std::string a : {std::string("--state-dir"), (dir / "state").string(),
                          std::string("--http"), "127.0.0.1:" + std::to_string(port_)})
      argv.push_back(std::move(a));
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
    pid_ = SpawnLogged(argv, log_, env);
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
  pid_t pid() const { return pid_; }
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
