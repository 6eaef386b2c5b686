#include "processors/auth/api_key_authenticator.h"

#include <charconv>
#include <cstdlib>

#include "topology/common/crypto.h"
#include "topology/query/http_server.h"

namespace cm::auth {

using state::Status;
using topology::Principal;

namespace {

// One message for every bad credential: an unknown key, a wrong secret and a revoked key look
// the same from outside.
Status Invalid() { return Status::InvalidArgument("invalid or revoked credential"); }

Principal PrincipalOf(const ApiKeyRecord& r) {
  return Principal{r.key_id, r.organization, r.scopes, r.user_id};
}

// `name=value` out of "keyId=...,signature=...".
std::string Param(std::string_view params, std::string_view name) {
  while (!params.empty()) {
    size_t comma = params.find(',');
    std::string_view part = params.substr(0, comma);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name &&
        part[name.size()] == '=')
      return std::string(part.substr(name.size() + 1));
    if (comma == std::string_view::npos) break;
    params.remove_prefix(comma + 1);
  }
  return {};
}

}  // namespace

ApiKeyAuthenticator::ApiKeyAuthenticator(StoreFn keys, ClockFn now)
    : keys_(std::move(keys)), now_(std::move(now)) {}

state::Result<Principal> ApiKeyAuthenticator::Authenticate(
    const topology::HttpRequest& request) const {
  const std::string header = request.Header("Authorization");
  if (header.empty())
    return Status::InvalidArgument(
        "authentication required: send Authorization: Bearer cmk_... (or a CM-HMAC-SHA256 "
        "signature)");
  std::string_view h = header;
  if (h.size() > 7 && h.substr(0, 7) == "Bearer ") return Bearer(h.substr(7));
  if (h.size() > 15 && h.substr(0, 15) == "CM-HMAC-SHA256 ") return Signed(request, h.substr(15));
  return Status::InvalidArgument("unsupported Authorization scheme: use Bearer or CM-HMAC-SHA256");
}

state::Result<Principal> ApiKeyAuthenticator::Bearer(std::string_view token) const {
  auto id = KeyIdOf(token);
  auto record = id ? Lookup(*id) : std::nullopt;
  // The hash is compared even for an unknown key, so both take the same time.
  const std::string expected = record ? record->secret_sha256 : std::string(64, '0');
  const bool match = topology::ConstantTimeEquals(TokenHash(token), expected);
  if (!record || !match || record->revoked()) return Invalid();
  return PrincipalOf(*record);
}

state::Result<Principal> ApiKeyAuthenticator::Signed(const topology::HttpRequest& request,
                                                     std::string_view params) const {
  const std::string key_id = Param(params, "keyId");
  const std::string signature = Param(params, "signature");
  const std::string timestamp = request.Header("X-Cm-Timestamp");
  int64_t at = 0;
  auto [end, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), at);
  if (key_id.empty() || signature.empty() || ec != std::errc() ||
      end != timestamp.data() + timestamp.size())
    return Status::InvalidArgument(
        "a CM-HMAC-SHA256 request needs keyId=...,signature=... and an X-Cm-Timestamp header "
        "(unix seconds)");
  const int64_t now = now_();
  if (std::llabs(now - at) > kMaxSkewSeconds)
    return Status::InvalidArgument("X-Cm-Timestamp is more than 300 s from the server's clock");
  auto record = Lookup(key_id);
  const std::string signing_key = record ? record->secret_sha256 : std::string(64, '0');
  const std::string to_sign = request.method + "\n" + request.target + "\n" + timestamp + "\n" +
                              topology::HexEncode(topology::Sha256(request.body));
  const std::string expected = topology::HexEncode(topology::HmacSha256(signing_key, to_sign));
  if (!record || record->revoked() || !topology::ConstantTimeEquals(signature, expected))
    return Invalid();
  if (!FirstUse(signature, now))
    return Status::InvalidArgument("this signature was already used: sign each request anew");
  return PrincipalOf(*record);
}

std::optional<ApiKeyRecord> ApiKeyAuthenticator::Lookup(const std::string& key_id) const {
  state::ReadOnlyKeyValueStore* keys = keys_();
  auto value = keys != nullptr ? keys->Get(key_id) : std::nullopt;
  if (!value) return std::nullopt;
  {
    std::lock_guard<std::mutex> lock(parsed_mu_);
    auto it = parsed_.find(key_id);
    if (it != parsed_.end() && it->second.stored == *value) return it->second.record;
  }
  auto record = ApiKeyRecord::Parse(*value);
  if (!record) return std::nullopt;
  std::lock_guard<std::mutex> lock(parsed_mu_);
  if (parsed_.size() >= kMaxParsed) parsed_.clear();
  parsed_.insert_or_assign(key_id, ParsedRecord{std::move(*value), *record});
  return record;
}

bool ApiKeyAuthenticator::FirstUse(const std::string& signature, int64_t now) const {
  std::lock_guard<std::mutex> lock(mu_);
  // A signature older than the skew window is refused by its timestamp anyway.
  while (!seen_order_.empty() && seen_order_.front().first < now - 2 * kMaxSkewSeconds) {
    seen_.erase(seen_order_.front().second);
    seen_order_.pop_front();
  }
  if (!seen_.insert(signature).second) return false;
  seen_order_.emplace_back(now, signature);
  return true;
}

}  // namespace cm::auth
