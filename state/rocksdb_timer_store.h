#pragma once

#include <cstdint>
#include <limits>

#include "state/overlay_store.h"
#include "state/timer_store.h"

namespace cm::state {

// TimerStore over an OverlayStore, with two kinds of raw entries in the one store:
//   'd' | 8-byte due (big-endian, sign bit flipped) | id  ->  payload        (the due index)
//   'i' | id                                          ->  8-byte due | payload (lookup by id)
// The due index sorts by (due, id), so the earliest timers are at the front of the 'd' range.
class RocksDbTimerStore final : public TimerStore {
 public:
  // store must outlive this object.
  explicit RocksDbTimerStore(OverlayStore& store) : store_(store) {}

  const std::string& name() const override { return store_.name(); }
  void Schedule(std::string_view id, int64_t due_ms, std::string_view payload) override;
  bool Cancel(std::string_view id) override;
  std::optional<Timer> Get(std::string_view id) override;
  std::vector<Timer> PopDue(int64_t now_ms, size_t max_count) override;
  std::optional<int64_t> NextDue() override;

 private:
  // Visits the due index in (due, id) order until visit returns false.
  void ScanDue(const std::function<bool(Timer timer)>& visit);
  void Remove(const Timer& timer);

  OverlayStore& store_;
  // No live due entry is below this while the store's generation is low_water_generation_:
  // scans start here instead of stepping over the tombstones of every timer popped since the
  // last compaction, and PopDue before it needs no scan. This holds because this class is the
  // only writer of its overlay (Schedule lowers it; undo, abort and restore bump the
  // generation).
  int64_t low_water_ = std::numeric_limits<int64_t>::min();
  uint64_t low_water_generation_ = 0;
};

}  // namespace cm::state
