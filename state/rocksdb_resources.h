#pragma once

// Private to state/: the RocksDB objects behind StateResources. Code outside state/ only sees
// the opaque StateResources::Impl declared in task_state.h and never includes RocksDB headers.

#include <rocksdb/cache.h>
#include <rocksdb/write_buffer_manager.h>

#include <cstddef>
#include <memory>

#include "state/task_state.h"

namespace cm::state {

struct StateResources::Impl {
  explicit Impl(size_t memory_bytes);

  // Data, index and filter blocks of every task's database, plus the memtables' reservations.
  std::shared_ptr<rocksdb::Cache> cache;
  // Caps the memtables of every task's database together; charged to `cache`.
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffer_manager;
};

}  // namespace cm::state
