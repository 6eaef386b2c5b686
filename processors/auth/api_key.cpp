#include "processors/auth/api_key.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "topology/common/crypto.h"

namespace cm::auth {

using nlohmann::json;

namespace {
constexpr size_t kKeyIdHex = 16;
constexpr size_t kSecretBytes = 24;

}  // namespace

std::string IsoTime(int64_t ms) {
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const std::vector<std::string>& KnownScopes() {
  static const std::vector<std::string> kScopes = {"usage:read",  "usage:write",   "teams:read",
                                                   "teams:write", "webhooks:read", "webhooks:write",
                                                   "admin"};
  return kScopes;
}

json ApiKeyRecord::ToPublicJson() const {
  json j = {{"keyId", key_id},     {"organizationId", organization},
            {"scopes", scopes},    {"userId", user_id},
            {"name", name},        {"createdAt", created_at},
            {"revoked", revoked()}};
  if (revoked()) j["revokedAt"] = revoked_at;
  return j;
}

std::string ApiKeyRecord::Serialize() const {
  json j = ToPublicJson();
  j["secretSha256"] = secret_sha256;
  return j.dump();
}

std::optional<ApiKeyRecord> ApiKeyRecord::Parse(std::string_view value) {
  json j = json::parse(value, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto str = [&](const char* f) {
    return j.contains(f) && j[f].is_string() ? j[f].get<std::string>() : std::string();
  };
  ApiKeyRecord r;
  r.key_id = str("keyId");
  r.secret_sha256 = str("secretSha256");
  r.organization = str("organizationId");
  r.user_id = str("userId");
  r.name = str("name");
  r.created_at = str("createdAt");
  r.revoked_at = str("revokedAt");
  if (j.contains("scopes") && j["scopes"].is_array())
    for (const auto& s : j["scopes"])
      if (s.is_string()) r.scopes.push_back(s.get<std::string>());
  if (r.key_id.empty() || r.secret_sha256.size() != 64) return std::nullopt;
  return r;
}

std::optional<std::string> KeyIdOf(std::string_view token) {
  constexpr std::string_view kPrefix = "cmk_";
  if (token.size() != kPrefix.size() + kKeyIdHex + 1 + 32 || token.substr(0, 4) != kPrefix ||
      token[kPrefix.size() + kKeyIdHex] != '_')
    return std::nullopt;
  std::string_view id = token.substr(kPrefix.size(), kKeyIdHex);
  if (!std::all_of(id.begin(), id.end(),
                   [](char c) { return std::isdigit(c) || (c >= 'a' && c <= 'f'); }))
    return std::nullopt;
  return std::string(id);
}

std::string TokenHash(std::string_view token) {
  return topology::HexEncode(topology::Sha256(token));
}

state::Result<NewKey> CreateApiKey(std::string organization, std::vector<std::string> scopes,
                                   std::string user_id, std::string name, int64_t now_ms) {
  if (scopes.empty()) return state::Status::InvalidArgument("scopes: give at least one scope");
  for (const auto& s : scopes) {
    if (std::find(KnownScopes().begin(), KnownScopes().end(), s) == KnownScopes().end())
      return state::Status::InvalidArgument("scopes: unknown scope '" + s.substr(0, 64) + "'");
  }
  const bool admin = std::find(scopes.begin(), scopes.end(), "admin") != scopes.end();
  if (admin && !organization.empty())
    return state::Status::InvalidArgument(
        "scopes: 'admin' is for keys of no organization (an admin key acts for all)");
  if (!admin && organization.empty())
    return state::Status::InvalidArgument(
        "organizationId: a key without the 'admin' scope belongs to one organization");
  if (organization.size() > 256 || user_id.size() > 256 || name.size() > 256)
    return state::Status::InvalidArgument(
        "organizationId, userId and name are at most 256 bytes each");
  NewKey k;
  k.record.key_id = topology::HexEncode(topology::RandomBytes(kKeyIdHex / 2));
  k.token = "cmk_" + k.record.key_id + "_" +
            topology::Base64UrlEncode(topology::RandomBytes(kSecretBytes));
  k.record.secret_sha256 = TokenHash(k.token);
  k.record.organization = std::move(organization);
  k.record.scopes = std::move(scopes);
  k.record.user_id = std::move(user_id);
  k.record.name = std::move(name);
  k.record.created_at = IsoTime(now_ms);
  return k;
}

state::Result<ApiKeyRecord> AdminRecordForToken(const std::string& token, int64_t now_ms) {
  auto id = KeyIdOf(token);
  if (!id)
    return state::Status::InvalidArgument(
        "CM_ADMIN_KEY must look like cmk_<16 hex digits>_<32 base64url characters> (make one "
        "with `cmstream apikey token`)");
  ApiKeyRecord r;
  r.key_id = *id;
  r.secret_sha256 = TokenHash(token);
  r.scopes = {"admin"};
  r.name = "CM_ADMIN_KEY";
  r.created_at = IsoTime(now_ms);
  return r;
}

}  // namespace cm::auth
