#include "state/rocksdb_key_value_store.h"

#include "state/key_codec.h"

namespace cm::state {

std::optional<std::string> RocksDbKeyValueStore::Get(std::string_view key) {
  return store_.Get(key);
}

std::vector<std::optional<std::string>> RocksDbKeyValueStore::MultiGet(
    const std::vector<std::string>& keys) {
  return store_.MultiGet(keys);
}

void RocksDbKeyValueStore::Put(std::string_view key, std::string_view value) {
  store_.Put(key, value);
}

void RocksDbKeyValueStore::Delete(std::string_view key) { store_.Delete(key); }

void RocksDbKeyValueStore::Range(std::string_view begin, std::string_view end,
                                 const EntryVisitor& visit) {
  store_.Scan(begin, end, visit);
}

void RocksDbKeyValueStore::PrefixScan(std::string_view prefix, const EntryVisitor& visit) {
  store_.Scan(prefix, PrefixSuccessor(prefix), visit);
}

}  // namespace cm::state
