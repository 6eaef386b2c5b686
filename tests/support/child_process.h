#pragma once

// A cmstream (or other) process started by a test, with its output in a log file, so tests can
// kill it with SIGKILL, restart it, and read what it logged. A child runs with the test
// cluster's credentials (test_credentials.h) in CM_ADMIN_KEY and CM_CLUSTER_SECRET unless the
// test's own environment sets them.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "deadline_scale.h"
#include "free_port.h"
#include "spawn_logged.h"
#include "test_credentials.h"

namespace cm::testing {

class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::string log_path)
      : argv_(std::move(argv)), log_path_(std::move(log_path)) {}
  ~ChildProcess() { Kill(SIGKILL); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void Start() {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
    if (::getenv("CM_ADMIN_KEY") == nullptr)
      env.push_back(std::string("CM_ADMIN_KEY=") + kTestAdminKey);
    if (::getenv("CM_CLUSTER_SECRET") == nullptr)
      env.push_back(std::string("CM_CLUSTER_SECRET=") + kTestClusterSecret);
    pid_ = SpawnLogged(argv_, log_path_, {.env = std::move(env)});
    if (pid_ < 0) throw std::runtime_error("fork failed");
  }

  // Sends the signal and reaps the process; returns its wait status (-1 if it was not running).
  int Kill(int signal) {
    if (pid_ <= 0) return -1;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  // Waits until the process exits by itself; its wait status, or -1 if it still runs at the
  // deadline (it is left running).
  int Wait(std::chrono::milliseconds deadline) {
    if (pid_ <= 0) return -1;
    auto until = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      if (std::chrono::steady_clock::now() >= until) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    return ::waitpid(pid_, &status, WNOHANG) == 0;
  }

  std::string Log() const {
    std::ifstream in(log_path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::vector<std::string> argv_;
  std::string log_path_;
  pid_t pid_ = -1;
};

// Polls `condition` until it holds or the deadline (times kDeadlineScale) passes.
inline bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
                    std::chrono::milliseconds every = std::chrono::milliseconds(50)) {
  auto until = std::chrono::steady_clock::now() + deadline * kDeadlineScale;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(every);
  }
  return condition();
}

// The cmstream binary of this build (tests link against the same tree).
inline std::string CmstreamBinary() { return std::string(CM_BINARY_DIR) + "/cmstream"; }

// Runs `cmstream args...` to its end (at most two minutes): its exit code (-1 when it did not
// exit by itself) and everything it printed, which also goes to `log`.
inline std::pair<int, std::string> RunToEnd(const std::vector<std::string>& args,
                                            const std::filesystem::path& log) {
  std::vector<std::string> argv{CmstreamBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(argv, log.string());
  p.Start();
  int status = p.Wait(std::chrono::seconds(120));
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, p.Log()};
}

// An emptied directory under the system's temp directory, named after `prefix`, this process
// and the running test, so that neither tests nor concurrent ctest processes share one.
inline std::filesystem::path FreshTestDirectory(const std::string& prefix) {
  auto dir = std::filesystem::temp_directory_path() /
             (prefix + "-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace cm::testing
