#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace cm::topology {

// Tells threads that wait for a task's committed state (a command's result) that a stream
// thread has committed, so they look again at once instead of on a polling schedule. An epoch
// counts the commits: read it, check the state, then wait for a commit after that epoch; a
// commit in between is not missed.
class CommitSignal {
 public:
  uint64_t Epoch() const {
    std::lock_guard<std::mutex> lock(mu_);
    return epoch_;
  }

  // A stream thread committed (or tried to: waiters only look again).
  void Notify() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++epoch_;
    }
    committed_.notify_all();
  }

  // Until a commit after `epoch` or the deadline; true for a commit.
  bool WaitAfter(uint64_t epoch, std::chrono::steady_clock::time_point deadline) const {
    std::unique_lock<std::mutex> lock(mu_);
    return committed_.wait_until(lock, deadline, [&] { return epoch_ != epoch; });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable committed_;
  uint64_t epoch_ = 0;
};

}  // namespace cm::topology
