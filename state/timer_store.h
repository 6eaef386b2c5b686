#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cm::state {

struct Timer {
  std::string id;
  int64_t due_ms = 0;
  std::string payload;
};

// Timers ordered by due time (then id). Timers are state: they survive restarts and are
// restored from the changelog like any store.
class TimerStore {
 public:
  virtual ~TimerStore() = default;

  virtual const std::string& name() const = 0;
  // Schedules timer `id`, replacing an earlier schedule of the same id.
  virtual void Schedule(std::string_view id, int64_t due_ms, std::string_view payload) = 0;
  // Returns false when no timer has that id.
  virtual bool Cancel(std::string_view id) = 0;
  virtual std::optional<Timer> Get(std::string_view id) = 0;
  // Removes and returns up to max_count timers due at or before now_ms, earliest first.
  virtual std::vector<Timer> PopDue(int64_t now_ms, size_t max_count) = 0;
  virtual std::optional<int64_t> NextDue() = 0;
};

}  // namespace cm::state
