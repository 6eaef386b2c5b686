#pragma once

// Webhook delivery for `cmstream run` (README "Webhooks"): the HTTP bridge as the webhooks
// application's WebhookTransport.
#include "bridges/http/delivery_client.h"
#include "processors/webhooks/webhook_transport.h"

namespace cm::cloudmatrix {

class HttpWebhookTransport final : public webhooks::WebhookTransport {
 public:
  explicit HttpWebhookTransport(http::DeliveryClientOptions options)
      : client_(std::move(options)) {}
  webhooks::DeliveryResponse Send(const webhooks::DeliveryRequest& request) override;
  // cmstream_webhook_connections_{opened,reused}_total and cmstream_webhook_idle_connections.
  std::string RenderMetrics() const override;

 private:
  http::DeliveryClient client_;
};

}  // namespace cm::cloudmatrix
