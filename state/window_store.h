#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace cm::state {

// Tumbling event-time windows: [start, start + size). A window accepts records until
// stream time passes its end plus the grace period; it is kept for `retention_ms` after its end.
struct WindowSpec {
  int64_t size_ms = 60'000;
  int64_t grace_ms = 0;
  int64_t retention_ms = 86'400'000;

  int64_t WindowStart(int64_t timestamp_ms) const;
  // True when a record for the window starting at window_start arrives too late to count.
  bool IsClosed(int64_t window_start, int64_t stream_time_ms) const {
    return window_start + size_ms + grace_ms <= stream_time_ms;
  }
};

inline int64_t WindowSpec::WindowStart(int64_t timestamp_ms) const {
  int64_t rem = timestamp_ms % size_ms;
  if (rem < 0) rem += size_ms;  // floor for timestamps before the epoch
  return timestamp_ms - rem;
}

using WindowVisitor =
    std::function<bool(std::string_view key, int64_t window_start, std::string_view value)>;

// The reading half of a window store; what interactive queries get.
class ReadOnlyWindowStore {
 public:
  virtual ~ReadOnlyWindowStore() = default;

  virtual const std::string& name() const = 0;
  virtual const WindowSpec& spec() const = 0;
  virtual std::optional<std::string> Get(std::string_view key, int64_t window_start) = 0;
  // Windows of one key with from <= start < to, in start order.
  virtual void Fetch(std::string_view key, int64_t from, int64_t to,
                     const WindowVisitor& visit) = 0;
  // Windows of every key with from <= start < to (key order, then start order).
  virtual void FetchAll(int64_t from, int64_t to, const WindowVisitor& visit) = 0;
};

// Values per (key, window start). Window starts need not be multiples of the spec's size, so
// calendar windows (months) can be stored too; the spec drives retention.
class WindowStore : public ReadOnlyWindowStore {
 public:
  virtual void Put(std::string_view key, int64_t window_start, std::string_view value) = 0;
  virtual void Delete(std::string_view key, int64_t window_start) = 0;
  // Deletes windows whose end is more than retention before stream_time; returns how many.
  virtual uint64_t ExpireBefore(int64_t stream_time_ms) = 0;
};

}  // namespace cm::state
