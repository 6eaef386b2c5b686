#include "processors/cloudmatrix/webhook_transport_http.h"

#include "topology/common/prometheus_text.h"

namespace cm::cloudmatrix {

namespace {

webhooks::TransportFailure FailureOf(http::DeliveryFailure failure) {
  switch (failure) {
    case http::DeliveryFailure::kNone:
      return webhooks::TransportFailure::kNone;
    case http::DeliveryFailure::kTimeout:
      return webhooks::TransportFailure::kTimeout;
    case http::DeliveryFailure::kConnection:
      return webhooks::TransportFailure::kConnection;
    case http::DeliveryFailure::kTls:
      return webhooks::TransportFailure::kTls;
    case http::DeliveryFailure::kBlockedAddress:
      return webhooks::TransportFailure::kBlockedAddress;
    case http::DeliveryFailure::kInvalidUrl:
      return webhooks::TransportFailure::kInvalidUrl;
  }
  return webhooks::TransportFailure::kConnection;
}

}  // namespace

webhooks::DeliveryResponse HttpWebhookTransport::Send(const webhooks::DeliveryRequest& request) {
  http::DeliveryOutcome outcome =
      client_.Post(request.url, request.headers, request.body, request.timeout_ms);
  return {.failure = FailureOf(outcome.failure),
          .status = outcome.status,
          .response_time_ms = outcome.response_time_ms,
          .retry_after_ms = outcome.retry_after_ms,
          .error = std::move(outcome.error)};
}

std::string HttpWebhookTransport::RenderMetrics() const {
  const http::DeliveryClient::Counters c = client_.counters();
  topology::PrometheusText out;
  out.Family("cmstream_webhook_connections_opened_total", "counter",
             "Connections opened to webhook endpoints")
      .Sample("cmstream_webhook_connections_opened_total", c.connections_opened);
  out.Family("cmstream_webhook_connections_reused_total", "counter",
             "Attempts sent on a kept-alive connection")
      .Sample("cmstream_webhook_connections_reused_total", c.connections_reused);
  out.Family("cmstream_webhook_idle_connections", "gauge",
             "Kept-alive connections waiting for the next attempt")
      .Sample("cmstream_webhook_idle_connections", c.idle_connections);
  return out.str();
}

}  // namespace cm::cloudmatrix
