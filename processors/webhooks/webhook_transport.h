#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cm::webhooks {

// One signed delivery attempt as the webhooks application composes it; the transport sends it.
struct DeliveryRequest {
  std::string url;  // https:// (http:// only where the deployment allows it)
  // Content-Type, webhook-id, webhook-timestamp, webhook-signature and the endpoint's custom
  // headers, in that order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int64_t timeout_ms = 30'000;  // connect + send + the whole response
};

// Why no HTTP status came back. Statuses themselves (2xx, 3xx, 410, 429, ...) are classified
// by the application, which knows what each means for the endpoint.
enum class TransportFailure {
  kNone,            // a status was received
  kTimeout,         // connect, send or response took longer than timeout_ms
  kConnection,      // refused, reset, unreachable, DNS failure, malformed response
  kTls,             // handshake or certificate verification failed
  kBlockedAddress,  // every address the host resolved to is refused (SSRF policy)
  kInvalidUrl,      // not a URL the transport can send to (scheme, host, port)
};

std::string_view TransportFailureName(TransportFailure failure);

struct DeliveryResponse {
  TransportFailure failure = TransportFailure::kNone;
  int status = 0;  // the HTTP status when failure is kNone, else 0
  int64_t response_time_ms = 0;
  // From Retry-After (delta-seconds or an HTTP date) when the status is 429 or 503.
  std::optional<int64_t> retry_after_ms;
  std::string error;  // a short, single-line reason for failures (never the response body)
};

// Sends deliveries (HTTP(S) in production: processors/cloudmatrix wires bridges/http in).
// Called on the webhook sender's threads, never on a stream thread, so it may block up to the
// request's timeout. Thread-safe.
class WebhookTransport {
 public:
  virtual ~WebhookTransport() = default;
  virtual DeliveryResponse Send(const DeliveryRequest& request) = 0;
  // Prometheus text of the transport's own figures (connections), for /metrics.
  virtual std::string RenderMetrics() const { return {}; }
};

}  // namespace cm::webhooks
