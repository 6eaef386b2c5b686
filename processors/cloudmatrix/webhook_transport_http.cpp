#include "processors/cloudmatrix/webhook_transport_http.h"

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

}  // namespace cm::cloudmatrix
