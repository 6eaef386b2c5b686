#pragma once

#include <chrono>
#include <cstdint>

namespace cm::topology {

// Milliseconds since the epoch on the system clock: for wall-clock punctuation, commit-record
// times and liveness, never for what processing computes (that uses record timestamps).
inline int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace cm::topology
