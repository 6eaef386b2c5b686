#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "state/status.h"

namespace cm::auth {

inline constexpr const char* kApiKeysTopic = "cloudmatrix.api-keys";
inline constexpr const char* kApiKeysStore = "api-keys";

// The scopes a key can hold; "admin" (only on a key of no organization) includes them all.
const std::vector<std::string>& KnownScopes();

// One API key as the api-keys topic holds it (keyed by key id). The secret itself is never
// stored: only its SHA-256.
struct ApiKeyRecord {
  std::string key_id;
  std::string secret_sha256;  // hex SHA-256 of the whole key ("cmk_<id>_<secret>")
  std::string organization;   // empty for an admin key
  std::vector<std::string> scopes;
  std::string user_id;
  std::string name;
  std::string created_at;
  std::string revoked_at;  // empty while the key works

  bool revoked() const { return !revoked_at.empty(); }
  // What listings show: everything but the hash.
  nlohmann::json ToPublicJson() const;
  std::string Serialize() const;
  static std::optional<ApiKeyRecord> Parse(std::string_view value);
};

// A new key: "cmk_" + 16 hex digits of key id + "_" + 32 base64url characters (24 random
// bytes: 192 bits from OpenSSL), and its record with the given grants.
struct NewKey {
  std::string token;
  ApiKeyRecord record;
};
// InvalidArgument when the grants are inconsistent: an unknown scope, no scope, "admin" on a
// key of one organization or an admin key without "admin".
state::Result<NewKey> CreateApiKey(std::string organization, std::vector<std::string> scopes,
                                   std::string user_id, std::string name, int64_t now_ms);
// The record a given token would have as an admin key (CM_ADMIN_KEY); InvalidArgument when the
// token is not a well-formed key.
state::Result<ApiKeyRecord> AdminRecordForToken(const std::string& token, int64_t now_ms);
// The key id inside a token, or nullopt when it is not shaped like one.
std::optional<std::string> KeyIdOf(std::string_view token);
// 2026-12-02T10:00:00Z
std::string IsoTime(int64_t ms);
// hex SHA-256 of a token: what a record stores, and the HMAC key of signed requests.
std::string TokenHash(std::string_view token);

}  // namespace cm::auth
