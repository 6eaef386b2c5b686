#pragma once

#include <stdexcept>
#include <string>

#include "topology/common/log.h"

namespace cm::topology {

// How the parts of one stream thread fail it. Fatal logs and throws, except inside a librdkafka
// callback: an exception must not unwind through librdkafka's C frames, so there the error waits
// until the poll returns (RaiseDeferred). Once the thread closes after a failure (MarkFailed),
// a later revocation treats the assignment as lost: nothing is committed.
class ThreadFailure {
 public:
  explicit ThreadFailure(int thread_index) : index_(thread_index) {}

  void Fatal(const std::string& what) {
    Log(LogLevel::kError, "stream_thread_failed", {{"thread", index_}, {"error", what}});
    if (in_callback_) {
      Defer(what);
      return;
    }
    throw std::runtime_error(what);
  }
  // Keeps the first error met inside a callback for RaiseDeferred.
  void Defer(const std::string& what) {
    if (fatal_.empty()) fatal_ = what;
  }
  void RaiseDeferred() const {
    if (!fatal_.empty()) throw std::runtime_error(fatal_);
  }
  void set_in_callback(bool in_callback) { in_callback_ = in_callback; }

  void MarkFailed() { failed_ = true; }
  bool failed() const { return failed_; }

 private:
  int index_;
  bool in_callback_ = false;
  bool failed_ = false;
  std::string fatal_;
};

}  // namespace cm::topology
