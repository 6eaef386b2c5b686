#include "topology/query/idempotency.h"

#include <cstdio>

#include "topology/common/crypto.h"

namespace cm::topology {

namespace {
constexpr size_t kMaxKeyBytes = 256;
}

state::Result<CommandIdentity> IdentifyCommand(const HttpRequest& request,
                                               std::string_view organization) {
  CommandIdentity identity;
  // Not the query: a command's copy forwarded to one partition's owner carries ?partition=N,
  // and must hash as the request the client sent.
  identity.request_hash =
      HexEncode(Sha256(request.method + '\0' + request.path + '\0' + request.body));
  const std::string key = request.Header("Idempotency-Key");
  if (key.empty()) {
    identity.command_id = RandomUuid();
    return identity;
  }
  if (key.size() > kMaxKeyBytes)
    return state::Status::InvalidArgument("Idempotency-Key must be at most 256 bytes");
  const std::string principal = request.principal ? request.principal->key_id : "";
  std::string scope = principal;
  for (std::string_view part : {organization, std::string_view(request.method),
                                std::string_view(request.route), std::string_view(key)}) {
    scope.push_back('\0');
    scope.append(part);
  }
  identity.command_id = "idem-" + HexEncode(Sha256(scope)).substr(0, 40);
  return identity;
}

HttpResponse IdempotencyKeyReused() {
  return HttpResponse::Error(
      422, "idempotency_key_reused",
      "this Idempotency-Key was used with a different request; use a new key for a new request");
}

std::string RandomUuid() {
  std::string b = RandomBytes(16);
  b[6] = static_cast<char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<char>((b[8] & 0x3F) | 0x80);
  std::string hex = HexEncode(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

}  // namespace cm::topology
