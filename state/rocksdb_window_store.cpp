#include "state/rocksdb_window_store.h"

#include <stdexcept>
#include <vector>

#include "state/key_codec.h"
#include "state/status.h"

namespace cm::state {

namespace {
constexpr size_t kLengthBytes = 4;
constexpr size_t kStartBytes = 8;
}  // namespace

std::string RocksDbWindowStore::EncodeKey(std::string_view key, int64_t window_start) {
  std::string raw;
  raw.reserve(kLengthBytes + key.size() + kStartBytes);
  AppendLength32(raw, key.size());
  raw.append(key);
  AppendOrderedInt64(raw, window_start);
  return raw;
}

RocksDbWindowStore::DecodedKey RocksDbWindowStore::DecodeKey(std::string_view raw) const {
  if (raw.size() < kLengthBytes + kStartBytes ||
      raw.size() != kLengthBytes + ReadLength32(raw) + kStartBytes) {
    throw StoreFailure("cmstream state: malformed key in window store " + name());
  }
  return {raw.substr(kLengthBytes, raw.size() - kLengthBytes - kStartBytes),
          ReadOrderedInt64(raw.substr(raw.size() - kStartBytes))};
}

std::optional<std::string> RocksDbWindowStore::Get(std::string_view key, int64_t window_start) {
  return store_.Get(EncodeKey(key, window_start));
}

void RocksDbWindowStore::Put(std::string_view key, int64_t window_start, std::string_view value) {
  store_.Put(EncodeKey(key, window_start), value);
}

void RocksDbWindowStore::Delete(std::string_view key, int64_t window_start) {
  store_.Delete(EncodeKey(key, window_start));
}

void RocksDbWindowStore::Fetch(std::string_view key, int64_t from, int64_t to,
                               const WindowVisitor& visit) {
  if (from >= to) return;
  store_.Scan(EncodeKey(key, from), EncodeKey(key, to),
              [&](std::string_view raw, std::string_view value) {
                const DecodedKey decoded = DecodeKey(raw);
                return visit(decoded.key, decoded.window_start, value);
              });
}

void RocksDbWindowStore::FetchAll(int64_t from, int64_t to, const WindowVisitor& visit) {
  if (from >= to) return;
  store_.Scan({}, {}, [&](std::string_view raw, std::string_view value) {
    const DecodedKey decoded = DecodeKey(raw);
    if (decoded.window_start < from || decoded.window_start >= to) return true;
    return visit(decoded.key, decoded.window_start, value);
  });
}

uint64_t RocksDbWindowStore::ExpireBefore(int64_t stream_time_ms) {
  // Collected first and deleted after the scan, so the scan never sees its own deletes.
  std::vector<std::string> expired;
  store_.Scan({}, {}, [&](std::string_view raw, std::string_view /*value*/) {
    const int64_t start = DecodeKey(raw).window_start;
    const int64_t expiry = SaturatingAdd(SaturatingAdd(start, spec_.size_ms), spec_.retention_ms);
    if (expiry <= stream_time_ms) expired.emplace_back(raw);
    return true;
  });
  for (const std::string& raw : expired) store_.Delete(raw);
  return expired.size();
}

}  // namespace cm::state
