#pragma once

#include "state/key_value_store.h"
#include "state/overlay_store.h"

namespace cm::state {

// KeyValueStore over an OverlayStore; the raw key is the user key as-is.
class RocksDbKeyValueStore final : public KeyValueStore {
 public:
  // store must outlive this object.
  explicit RocksDbKeyValueStore(OverlayStore& store) : store_(store) {}

  const std::string& name() const override { return store_.name(); }
  std::optional<std::string> Get(std::string_view key) override;
  std::vector<std::optional<std::string>> MultiGet(const std::vector<std::string>& keys) override;
  void Put(std::string_view key, std::string_view value) override;
  void Delete(std::string_view key) override;
  void Range(std::string_view begin, std::string_view end, const EntryVisitor& visit) override;
  void PrefixScan(std::string_view prefix, const EntryVisitor& visit) override;

 private:
  OverlayStore& store_;
};

}  // namespace cm::state
