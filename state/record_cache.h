#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace cm::state {

// A stream thread's record cache (Kafka Streams' `statestore.cache.max.bytes`): one byte budget
// shared by every store of the thread's tasks. It holds two kinds of bytes:
//  - clean entries: a store's committed value for a key (or the fact that the key is absent),
//    kept after a read fetched it from RocksDB and brought up to date by each commit that
//    writes the key, so the next read skips RocksDB. They are evicted least recently used
//    first.
//  - buffered bytes: the writes each store holds for the next commit (OverlayStore's pending
//    map, where repeated writes to one key already coalesce). They cannot be evicted, since a
//    commit writes them in one batch with its checkpoint; they push clean entries out, and once
//    they alone exceed the budget the thread commits early (commit_needed).
// The cache never holds a value that is not in RocksDB: stores put entries in after reading
// them or after a commit wrote them, and clear their entries when they are written around
// (a restore). Not thread-safe: the stream thread is its only user, except AddStore, which the
// threads of TaskState::OpenAll call while they open its tasks' stores.
class RecordCache {
 public:
  using StoreId = uint64_t;

  struct Stats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
    size_t entries = 0;
    size_t clean_bytes = 0;
    size_t buffered_bytes = 0;
  };

  // Bytes charged for one entry besides its key and value, as glibc allocates them on x86-64
  // (heaptrack of a usage run): the LRU list node (112), the index node (48) and its bucket
  // (8), and the heap headers and rounding of a key and value too long to be stored inline
  // (about 24). A buffered write's map node is smaller (112). 96, the figure before, let the
  // cache use about 1.5 times its budget.
  static constexpr size_t kEntryOverhead = 192;

  // What an entry of key and value is charged, clean or buffered.
  static size_t Charge(std::string_view key, const std::optional<std::string>& value) {
    return key.size() + (value ? value->size() : 0) + kEntryOverhead;
  }

  explicit RecordCache(size_t max_bytes) : max_bytes_(max_bytes) {}
  RecordCache(const RecordCache&) = delete;
  RecordCache& operator=(const RecordCache&) = delete;

  size_t max_bytes() const { return max_bytes_; }

  // Each store instance (one store of one task) gets its own key space.
  StoreId AddStore() { return next_store_.fetch_add(1, std::memory_order_relaxed); }
  // Drops every clean entry of a store (closed, or written around by a restore).
  void ClearStore(StoreId store);

  // The committed value of key, when cached (nullopt inside: the key is known to be absent);
  // null when not cached. Valid until the cache is next changed.
  const std::optional<std::string>* Find(StoreId store, std::string_view key);
  // Caches the committed value of key (nullopt: absent), evicting the least recently used
  // entries to stay in budget. An entry larger than the budget is not kept. The key is taken by
  // value: a commit hands over the keys it no longer needs instead of copying them.
  void Put(StoreId store, std::string key, std::optional<std::string> value);
  // A commit wrote key: a cached entry takes the new value (and is used again), or leaves when
  // the value is larger than the budget; a key that is not cached stays out, so keys written
  // once and never read do not push out the ones that are read.
  void Update(StoreId store, std::string_view key, std::optional<std::string> value);

  // A store's buffered writes grew or shrank by delta bytes.
  void AddBuffered(int64_t delta);
  // The buffered writes alone are over the budget: the thread should commit now.
  bool commit_needed() const { return max_bytes_ > 0 && buffered_bytes_ > max_bytes_; }

  const Stats& stats() const { return stats_; }

 private:
  struct Entry {
    StoreId store;
    std::string key;
    std::optional<std::string> value;
    size_t charge;
    size_t hash;  // of key: an erase does not hash it again
  };
  using Lru = std::list<Entry>;  // most recently used first
  // A key with its hash, computed once per operation rather than by each lookup, insert and
  // erase of it.
  struct HashedKey {
    std::string_view key;
    size_t hash;
    bool operator==(const HashedKey& other) const { return key == other.key; }
  };
  struct KeyHash {
    size_t operator()(const HashedKey& k) const { return k.hash; }
  };
  static HashedKey Hashed(std::string_view key) {
    return {key, std::hash<std::string_view>()(key)};
  }
  // Keys view the entry's own key, which a list node keeps in place.
  using Index = std::unordered_map<HashedKey, Lru::iterator, KeyHash>;

  void Erase(Index& index, Lru::iterator entry);
  // Gives a cached entry a new value and makes it the most recently used; drops it (and its
  // store's index once empty, which the caller must not use again) when the value no longer
  // fits the budget.
  void Replace(Index& index, Lru::iterator entry, std::optional<std::string> value);
  void EvictToFit();

  size_t max_bytes_;
  std::atomic<StoreId> next_store_{1};
  Lru lru_;
  std::unordered_map<StoreId, Index> indexes_;
  size_t buffered_bytes_ = 0;
  Stats stats_;
};

}  // namespace cm::state
