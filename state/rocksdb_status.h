#pragma once

// Private to state/: conversions between RocksDB's status and slices and cmstream's types.

#include <rocksdb/slice.h>
#include <rocksdb/status.h>

#include <string>
#include <string_view>

#include "state/status.h"

namespace cm::state {

inline rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }

// For operations whose failure the caller handles (open, commit, restore).
inline Status ToStatus(const rocksdb::Status& s, std::string_view what) {
  std::string message = std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::Corruption(std::move(message));
  if (s.IsInvalidArgument()) return Status::InvalidArgument(std::move(message));
  return Status::IOError(std::move(message));
}

// Store reads and writes: a failing database is not an expected failure (key_value_store.h).
inline void ThrowIfError(const rocksdb::Status& s, std::string_view what) {
  if (!s.ok()) throw StoreFailure("cmstream state: " + std::string(what) + ": " + s.ToString());
}

}  // namespace cm::state
