#include "state/rocksdb_timer_store.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "state/key_codec.h"
#include "state/status.h"

namespace cm::state {

namespace {

constexpr char kDueTag = 'd';
constexpr char kIdTag = 'i';
constexpr size_t kDueBytes = 8;

std::string DueKey(int64_t due_ms, std::string_view id) {
  std::string key(1, kDueTag);
  AppendOrderedInt64(key, due_ms);
  key.append(id);
  return key;
}

std::string IdKey(std::string_view id) {
  std::string key(1, kIdTag);
  key.append(id);
  return key;
}

[[noreturn]] void ThrowMalformed(const std::string& store) {
  throw StoreFailure("cmstream state: malformed entry in timer store " + store);
}

}  // namespace

std::optional<Timer> RocksDbTimerStore::Get(std::string_view id) {
  std::optional<std::string> entry = store_.Get(IdKey(id));
  if (!entry) return std::nullopt;
  if (entry->size() < kDueBytes) ThrowMalformed(name());
  return Timer{std::string(id), ReadOrderedInt64(*entry), entry->substr(kDueBytes)};
}

void RocksDbTimerStore::Schedule(std::string_view id, int64_t due_ms, std::string_view payload) {
  low_water_ = std::min(low_water_, due_ms);
  if (std::optional<Timer> old = Get(id)) store_.Delete(DueKey(old->due_ms, id));
  store_.Put(DueKey(due_ms, id), payload);
  std::string entry;
  entry.reserve(kDueBytes + payload.size());
  AppendOrderedInt64(entry, due_ms);
  entry.append(payload);
  store_.Put(IdKey(id), entry);
}

bool RocksDbTimerStore::Cancel(std::string_view id) {
  std::optional<Timer> timer = Get(id);
  if (!timer) return false;
  Remove(*timer);
  return true;
}

void RocksDbTimerStore::Remove(const Timer& timer) {
  store_.Delete(DueKey(timer.due_ms, timer.id));
  store_.Delete(IdKey(timer.id));
}

void RocksDbTimerStore::ScanDue(const std::function<bool(Timer timer)>& visit) {
  const std::string prefix(1, kDueTag);
  std::string begin = prefix;
  if (low_water_generation_ == store_.generation()) AppendOrderedInt64(begin, low_water_);
  store_.Scan(begin, PrefixSuccessor(prefix), [&](std::string_view raw, std::string_view payload) {
    if (raw.size() < 1 + kDueBytes) ThrowMalformed(name());
    return visit(Timer{std::string(raw.substr(1 + kDueBytes)), ReadOrderedInt64(raw.substr(1)),
                       std::string(payload)});
  });
}

std::vector<Timer> RocksDbTimerStore::PopDue(int64_t now_ms, size_t max_count) {
  std::vector<Timer> due;
  if (max_count == 0) return due;
  // Nothing is below the low-water mark: no iterator needed (punctuators ask every few ms).
  if (low_water_generation_ == store_.generation() && now_ms < low_water_) return due;
  // After the scan, no live entry is below the first one left: the first not yet due, or the
  // last popped (others may share its due time), or none at all.
  int64_t low = std::numeric_limits<int64_t>::max();
  ScanDue([&](Timer timer) {
    if (timer.due_ms > now_ms) {
      low = timer.due_ms;
      return false;
    }
    due.push_back(std::move(timer));
    return due.size() < max_count;
  });
  if (!due.empty()) low = std::min(low, due.back().due_ms);
  // Removed after the scan, so the scan never sees its own deletes.
  for (const Timer& timer : due) Remove(timer);
  low_water_ = low;
  low_water_generation_ = store_.generation();
  return due;
}

std::optional<int64_t> RocksDbTimerStore::NextDue() {
  std::optional<int64_t> next;
  ScanDue([&](Timer timer) {
    next = timer.due_ms;
    return false;
  });
  return next;
}

}  // namespace cm::state
