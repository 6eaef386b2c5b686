#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "state/status.h"
#include "topology/query/principal.h"

namespace cm::topology {

struct HttpRequest;

// Signs the requests one instance forwards to another (--cluster-secret), and checks them on
// the receiving side. A forwarded request was already authenticated where it arrived: it
// carries that principal, and the HMAC over the method, the target, the time, the body's
// SHA-256 and the principal is what lets the owner believe it. Without the secret an instance
// neither forwards nor accepts forwarded requests.
class ClusterSigner {
 public:
  static constexpr const char* kForwardedByHeader = "X-Cm-Forwarded-By";
  static constexpr const char* kPrincipalHeader = "X-Cm-Principal";
  static constexpr const char* kTimestampHeader = "X-Cm-Forwarded-At";
  static constexpr const char* kSignatureHeader = "X-Cm-Cluster-Signature";
  static constexpr int64_t kMaxSkewSeconds = 300;

  explicit ClusterSigner(std::string secret) : secret_(std::move(secret)) {}

  // The headers of a forwarded copy of `request` (whose principal must be set).
  std::map<std::string, std::string> Sign(const HttpRequest& request,
                                          const std::string& instance_id,
                                          int64_t now_seconds) const;
  // The principal a forwarded request carries, or why it is not to be believed.
  state::Result<Principal> Verify(const HttpRequest& request, int64_t now_seconds) const;

 private:
  std::string Signature(const HttpRequest& request, const std::string& principal,
                        const std::string& instance_id, const std::string& timestamp) const;

  std::string secret_;
};

}  // namespace cm::topology
