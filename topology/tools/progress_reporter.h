#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace cm::topology {

// Shows the progress of a long step (a backfill): a bar with records done / total, rate and
// ETA redrawn on stderr when it is a terminal, otherwise a JSON log line every few seconds.
class ProgressReporter {
 public:
  ProgressReporter(std::string step, bool terminal);
  // Rate-limited: call as often as convenient.
  void Update(uint64_t done, uint64_t total);
  // Draws or logs the final figures (always) and ends the bar's line.
  void Finish(uint64_t done, uint64_t total);
  double rate() const { return rate_; }  // records per second since the start

 private:
  void Emit(uint64_t done, uint64_t total, bool final);

  std::string step_;
  bool terminal_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
  double rate_ = 0;
};

}  // namespace cm::topology
