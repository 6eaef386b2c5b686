#pragma once

// Starting a child process whose output goes to a log file: the tests' ChildProcess and the
// benchmarks (ops/bench) both start, kill and read the logs of cmstream processes this way.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <string>
#include <vector>

extern char** environ;

namespace cm::testing {

struct SpawnOptions {
  // The child's environment; empty: this process's.
  std::vector<std::string> env;
  // SIGKILL the child when the thread that started it ends, so that a benchmark stopping on an
  // error leaves no process behind. Tests reap their children themselves.
  bool die_with_parent = false;
};

// Forks and executes argv[0] with `argv`, its stdout and stderr appended to `log`. The child's
// pid, or -1 when fork failed.
inline pid_t SpawnLogged(std::vector<std::string> argv, const std::string& log,
                         SpawnOptions options = {}) {
  if (options.env.empty())
    for (char** e = environ; *e != nullptr; ++e) options.env.emplace_back(*e);
  // Built before fork: the child only calls async-signal-safe functions.
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : options.env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  if (options.die_with_parent) ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  ::dup2(fd, STDOUT_FILENO);
  ::dup2(fd, STDERR_FILENO);
  ::execve(args[0], args.data(), envp.data());
  ::_exit(127);
}

}  // namespace cm::testing
