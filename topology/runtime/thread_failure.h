#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "topology/common/log.h"

namespace cm::topology {

// What ThreadFailure throws: the stream thread cannot go on. It is not the failure of the record
// being processed, so a task lets it through instead of dead-lettering that record.
class StreamThreadFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// How the parts of one stream thread fail it. Fatal logs and throws, except inside a librdkafka
// callback: an exception must not unwind through librdkafka's C frames, so there the error waits
// until the poll returns (RaiseDeferred). Once the thread closes after a failure (MarkFailed),
// a later revocation treats the assignment as lost: nothing is committed.
class ThreadFailure {
 public:
  explicit ThreadFailure(int thread_index) : index_(thread_index) {}

  // A task cannot go on (its store failed, its republish cannot finish): counted, logged as
  // task_failed, and the thread fails like after any fatal error.
  void FailTask(const std::string& task, const std::string& what) {
    ++task_failures_;
    Log(LogLevel::kError, "task_failed", {{"thread", index_}, {"task", task}, {"error", what}});
    Fatal("task " + task + " failed: " + what);
  }
  uint64_t task_failures() const { return task_failures_; }

  void Fatal(const std::string& what) {
    Log(LogLevel::kError, "stream_thread_failed", {{"thread", index_}, {"error", what}});
    if (in_callback_) {
      Defer(what);
      return;
    }
    throw StreamThreadFailure(what);
  }
  // Keeps the first error met inside a callback for RaiseDeferred.
  void Defer(const std::string& what) {
    if (fatal_.empty()) fatal_ = what;
  }
  void RaiseDeferred() const {
    if (!fatal_.empty()) throw StreamThreadFailure(fatal_);
  }
  void set_in_callback(bool in_callback) { in_callback_ = in_callback; }

  void MarkFailed() { failed_ = true; }
  bool failed() const { return failed_; }
  // A fatal error met inside the current callback waits for RaiseDeferred: the callback must
  // not go on as if nothing happened (nor commit anything).
  bool deferred() const { return !fatal_.empty(); }

 private:
  int index_;
  bool in_callback_ = false;
  bool failed_ = false;
  uint64_t task_failures_ = 0;
  std::string fatal_;
};

}  // namespace cm::topology
