#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cm::state {

// Visits one entry; return false to stop the scan.
using EntryVisitor = std::function<bool(std::string_view key, std::string_view value)>;

// The reading half of a key-value store; what interactive queries get (Kafka Streams'
// ReadOnlyKeyValueStore). An I/O error of the underlying database is not an expected failure:
// it throws StoreFailure (status.h).
class ReadOnlyKeyValueStore {
 public:
  virtual ~ReadOnlyKeyValueStore() = default;

  virtual const std::string& name() const = 0;
  virtual std::optional<std::string> Get(std::string_view key) = 0;
  // The values of several keys, in the order asked: what Get would return for each, read from
  // RocksDB in one batched lookup (MultiGet) rather than one walk of the memtables and files
  // per key, which is cheaper when most of them are not cached.
  virtual std::vector<std::optional<std::string>> MultiGet(
      const std::vector<std::string>& keys) = 0;
  // Entries with begin <= key < end, in key order; an empty end means no upper bound.
  virtual void Range(std::string_view begin, std::string_view end, const EntryVisitor& visit) = 0;
  // Entries whose key starts with prefix, in key order.
  virtual void PrefixScan(std::string_view prefix, const EntryVisitor& visit) = 0;
};

// A task-local ordered key-value store (Kafka Streams' KeyValueStore). Writes are buffered
// until the task commits, and reads see them at once.
class KeyValueStore : public ReadOnlyKeyValueStore {
 public:
  virtual void Put(std::string_view key, std::string_view value) = 0;
  virtual void Delete(std::string_view key) = 0;
};

}  // namespace cm::state
