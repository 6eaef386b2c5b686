// What a stranger controls in authentication: the Authorization and X-Cm-Timestamp headers,
// the headers of a forwarded request, and (with broker access) the records of the api-keys
// topic. Invariants: nothing is accepted without a key in the store or a cluster signature made
// with the secret; a record that parses serializes to a record that parses the same.
#include <string>

#include "fuzz_check.h"
#include "processors/auth/api_key.h"
#include "processors/auth/api_key_authenticator.h"
#include "topology/query/cluster_signer.h"
#include "topology/query/http_server.h"

namespace {

// The input split at NUL bytes into up to four parts.
std::string Part(std::string_view in, int index) {
  for (int i = 0; i < index; ++i) {
    size_t nul = in.find('\0');
    if (nul == std::string_view::npos) return {};
    in.remove_prefix(nul + 1);
  }
  return std::string(in.substr(0, in.find('\0')));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cm;
  const std::string_view in = fuzz::Bytes(data, size);
  topology::HttpRequest request;
  request.method = "POST";
  request.path = "/v1/usage/events";
  request.target = request.path;
  request.body = Part(in, 3);
  request.headers.emplace("Authorization", Part(in, 0));
  request.headers.emplace("X-Cm-Timestamp", Part(in, 1));

  // No store: no credential can be good.
  auth::ApiKeyAuthenticator empty([] { return nullptr; }, [] { return int64_t{1'700'000'000}; });
  FUZZ_CHECK(!empty.Authenticate(request).ok(), Part(in, 0));

  // A forwarded copy with attacker-chosen headers is never believed without the secret.
  request.headers.emplace(topology::ClusterSigner::kForwardedByHeader, "x");
  request.headers.emplace(topology::ClusterSigner::kPrincipalHeader, Part(in, 2));
  request.headers.emplace(topology::ClusterSigner::kTimestampHeader, Part(in, 1));
  request.headers.emplace(topology::ClusterSigner::kSignatureHeader, Part(in, 0));
  topology::ClusterSigner signer("fuzz-secret");
  FUZZ_CHECK(!signer.Verify(request, 1'700'000'000).ok(), Part(in, 2));
  // What the signer signs, it believes (the principal survives the trip).
  topology::HttpRequest forwarded = request;
  forwarded.headers.clear();
  auto principal =
      topology::Principal::FromJson(nlohmann::json::parse(Part(in, 2), nullptr, false));
  if (principal) {
    forwarded.principal = *principal;
    for (auto& [k, v] : signer.Sign(forwarded, "a", 1'700'000'000)) forwarded.headers.emplace(k, v);
    auto verified = signer.Verify(forwarded, 1'700'000'000);
    FUZZ_CHECK(verified.ok() && verified->ToJson() == principal->ToJson(), Part(in, 2));
  }

  // A record from the topic: parsed, written back, parsed again to the same record.
  if (auto record = auth::ApiKeyRecord::Parse(Part(in, 2))) {
    auto again = auth::ApiKeyRecord::Parse(record->Serialize());
    FUZZ_CHECK(again && again->Serialize() == record->Serialize(), Part(in, 2));
  }
  (void)auth::KeyIdOf(Part(in, 0));
  return 0;
}
