#include "topology/tools/progress_reporter.h"

#include <algorithm>
#include <cstdio>

#include "topology/common/log.h"

namespace cm::topology {

namespace {

std::string FormatSeconds(double seconds) {
  auto s = static_cast<long>(seconds + 0.5);
  char out[32];
  std::snprintf(out, sizeof out, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  return out;
}

}  // namespace

ProgressReporter::ProgressReporter(std::string step, bool terminal)
    : step_(std::move(step)), terminal_(terminal) {}

void ProgressReporter::Update(uint64_t done, uint64_t total) {
  auto now = std::chrono::steady_clock::now();
  auto every = terminal_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(2000);
  if (now - last_ < every) return;
  Emit(done, total, false);
}

void ProgressReporter::Finish(uint64_t done, uint64_t total) { Emit(done, total, true); }

void ProgressReporter::Emit(uint64_t done, uint64_t total, bool final) {
  last_ = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(last_ - started_).count();
  rate_ = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  double fraction = total == 0 ? 1.0 : std::min(1.0, static_cast<double>(done) / total);
  double eta = rate_ > 0 ? static_cast<double>(total - std::min(done, total)) / rate_ : 0;
  if (!terminal_) {
    Log(LogLevel::kInfo, step_ + (final ? "_done" : "_progress"),
        {{"records", done},
         {"totalRecords", total},
         {"percent", static_cast<int>(fraction * 1000) / 10.0},
         {"recordsPerSecond", static_cast<uint64_t>(rate_)},
         {"elapsedSeconds", static_cast<uint64_t>(elapsed)},
         {"etaSeconds", static_cast<uint64_t>(eta)}});
    return;
  }
  constexpr int kWidth = 30;
  int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  std::fprintf(stderr, "\r%s [%s] %llu/%llu %5.1f%% %.0f rec/s ETA %s", step_.c_str(), bar.c_str(),
               static_cast<unsigned long long>(done), static_cast<unsigned long long>(total),
               fraction * 100, rate_,
               final       ? "0:00:00"
               : rate_ > 0 ? FormatSeconds(eta).c_str()
                           : "-:--:--");
  if (final) std::fprintf(stderr, "\n");
  std::fflush(stderr);
}

}  // namespace cm::topology
