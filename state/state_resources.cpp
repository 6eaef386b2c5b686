#include <algorithm>

#include "state/rocksdb_resources.h"

namespace cm::state {

namespace {
// A write-buffer manager with a zero budget means "unlimited" to RocksDB, and a cache of a few
// bytes makes every read go to disk: below this the budget is raised.
constexpr size_t kMinMemoryBytes = size_t{8} << 20;
// Index and filter blocks go to the high-priority pool so data blocks cannot evict them.
constexpr double kHighPriorityPoolRatio = 0.1;
}  // namespace

// As Kafka Streams' BoundedMemoryRocksDBConfig: the cache holds the whole budget and the
// memtables (at most a quarter of it) reserve their memory in the cache, so blocks and
// memtables together stay within memory_bytes and blocks keep at least three quarters.
StateResources::Impl::Impl(size_t memory_bytes) {
  const size_t total = std::max(memory_bytes, kMinMemoryBytes);
  rocksdb::LRUCacheOptions cache_options;
  cache_options.capacity = total;
  cache_options.high_pri_pool_ratio = kHighPriorityPoolRatio;
  cache = rocksdb::NewLRUCache(cache_options);
  write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(total / 4, cache);
}

StateResources::StateResources(size_t memory_bytes)
    : memory_bytes_(memory_bytes), impl_(std::make_unique<Impl>(memory_bytes)) {}

StateResources::~StateResources() = default;

}  // namespace cm::state
