#include "topology/query/cluster_signer.h"

#include <charconv>
#include <cstdlib>

#include "topology/common/crypto.h"
#include "topology/query/http_server.h"

namespace cm::topology {

std::string ClusterSigner::Signature(const HttpRequest& request, const std::string& principal,
                                     const std::string& instance_id,
                                     const std::string& timestamp) const {
  std::string to_sign = request.method + "\n" + request.CanonicalTarget() + "\n" + timestamp +
                        "\n" + HexEncode(Sha256(request.body)) + "\n" + principal + "\n" +
                        instance_id;
  return HexEncode(HmacSha256(secret_, to_sign));
}

std::map<std::string, std::string> ClusterSigner::Sign(const HttpRequest& request,
                                                       const std::string& instance_id,
                                                       int64_t now_seconds) const {
  const std::string principal = request.principal ? request.principal->ToJson().dump() : "";
  const std::string timestamp = std::to_string(now_seconds);
  return {{kForwardedByHeader, instance_id},
          {kPrincipalHeader, principal},
          {kTimestampHeader, timestamp},
          {kSignatureHeader, Signature(request, principal, instance_id, timestamp)}};
}

state::Result<Principal> ClusterSigner::Verify(const HttpRequest& request,
                                               int64_t now_seconds) const {
  const std::string signature = request.Header(kSignatureHeader);
  const std::string timestamp = request.Header(kTimestampHeader);
  const std::string principal = request.Header(kPrincipalHeader);
  const std::string instance = request.Header(kForwardedByHeader);
  auto refused = state::Status::InvalidArgument(
      "a forwarded request needs a valid cluster signature (--cluster-secret)");
  int64_t at = 0;
  auto [end, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), at);
  if (signature.empty() || ec != std::errc() || end != timestamp.data() + timestamp.size() ||
      std::llabs(now_seconds - at) > kMaxSkewSeconds)
    return refused;
  if (!ConstantTimeEquals(signature, Signature(request, principal, instance, timestamp)))
    return refused;
  auto parsed = Principal::FromJson(nlohmann::json::parse(principal, nullptr, false));
  if (!parsed) return refused;
  return *parsed;
}

}  // namespace cm::topology
