#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "processors/auth/api_key.h"
#include "state/key_value_store.h"
#include "topology/query/authenticator.h"

namespace cm::auth {

// Authenticates requests against the api-keys global store, on any instance, without a remote
// call. Two credentials (DESIGN.md §6):
//   Authorization: Bearer cmk_<id>_<secret>
//   Authorization: CM-HMAC-SHA256 keyId=<id>,signature=<hex>  with  X-Cm-Timestamp: <unix s>
//     signature = hex HMAC-SHA256(key = hex SHA-256 of the API key,
//                                 METHOD \n path?query \n timestamp \n hex SHA-256 of the body)
// A signed request more than 300 s off the server's clock is refused, and each signature is
// accepted once (a replay cache that holds the signatures of the last 2 × 300 s).
class ApiKeyAuthenticator final : public topology::Authenticator {
 public:
  static constexpr int64_t kMaxSkewSeconds = 300;
  using StoreFn = std::function<state::ReadOnlyKeyValueStore*()>;
  using ClockFn = std::function<int64_t()>;  // unix seconds

  // `keys` finds the global store (it exists once the streams started); `now` is the clock.
  ApiKeyAuthenticator(StoreFn keys, ClockFn now);

  state::Result<topology::Principal> Authenticate(
      const topology::HttpRequest& request) const override;

 private:
  state::Result<topology::Principal> Bearer(std::string_view token) const;
  state::Result<topology::Principal> Signed(const topology::HttpRequest& request,
                                            std::string_view params) const;
  // True the first time a signature is seen within the window.
  bool FirstUse(const std::string& signature, int64_t now) const;
  // The record stored under key_id, parsed once per stored value: every request reads the
  // store (so a revocation applies at once), but only a value not seen before is parsed.
  std::optional<ApiKeyRecord> Lookup(const std::string& key_id) const;

  StoreFn keys_;
  ClockFn now_;
  mutable std::mutex mu_;
  mutable std::unordered_set<std::string> seen_;
  mutable std::deque<std::pair<int64_t, std::string>> seen_order_;

  struct ParsedRecord {
    std::string stored;  // the value it was parsed from
    ApiKeyRecord record;
  };
  // Bounded: cleared when it reaches kMaxParsed keys (an instance serves few keys).
  static constexpr size_t kMaxParsed = 4096;
  mutable std::mutex parsed_mu_;
  mutable std::unordered_map<std::string, ParsedRecord> parsed_;
};

}  // namespace cm::auth
