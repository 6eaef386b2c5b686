#pragma once

#include "state/overlay_store.h"
#include "state/window_store.h"

namespace cm::state {

// WindowStore over an OverlayStore. The raw key is
//   4-byte big-endian key length | key | 8-byte big-endian (window start with the sign bit flipped)
// so raw keys sort by (key, window start): the length prefix keeps a key's windows together
// even when the key is a prefix of another key, and the flipped sign bit orders negative starts
// before positive ones.
class RocksDbWindowStore final : public WindowStore {
 public:
  // store must outlive this object.
  RocksDbWindowStore(OverlayStore& store, const WindowSpec& spec) : store_(store), spec_(spec) {}

  const std::string& name() const override { return store_.name(); }
  const WindowSpec& spec() const override { return spec_; }
  std::optional<std::string> Get(std::string_view key, int64_t window_start) override;
  void Put(std::string_view key, int64_t window_start, std::string_view value) override;
  void Delete(std::string_view key, int64_t window_start) override;
  // A range scan over the key's windows.
  void Fetch(std::string_view key, int64_t from, int64_t to, const WindowVisitor& visit) override;
  // A full scan of the store, filtered by window start.
  void FetchAll(int64_t from, int64_t to, const WindowVisitor& visit) override;
  // A full scan; expired windows are deleted through the overlay, so the deletes are
  // changelogged like any other write.
  uint64_t ExpireBefore(int64_t stream_time_ms) override;

  static std::string EncodeKey(std::string_view key, int64_t window_start);

 private:
  struct DecodedKey {
    std::string_view key;
    int64_t window_start = 0;
  };
  DecodedKey DecodeKey(std::string_view raw) const;

  OverlayStore& store_;
  WindowSpec spec_;
};

}  // namespace cm::state
