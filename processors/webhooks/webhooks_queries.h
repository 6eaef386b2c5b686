#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "processors/webhooks/webhooks_stores.h"
#include "state/status.h"

namespace cm::webhooks {

// The read methods of the seeds' WebhookDeliverySystem over one task's stores (committed in
// the routes, live in tests). NotFound for unknown ids.
class WebhooksQueries {
 public:
  explicit WebhooksQueries(WebhooksStoreViews views) : v_(views) {}

  state::Result<nlohmann::json> GetWebhook(const std::string& org, const std::string& id) const;
  // {webhooks, total, hasMore, nextCursor}: by id; `cursor` is the previous page's nextCursor.
  state::Result<nlohmann::json> ListWebhooks(const std::string& org, size_t limit,
                                             const std::string& cursor) const;
  // {eventId, eventType, occurredAt, deliveries (each with its attempts), summary: {webhookId:
  // {deliveryId, status, attempts, lastAttemptAt, responseStatus}}}.
  state::Result<nlohmann::json> GetEventDeliveryStatus(const std::string& org,
                                                       const std::string& event_id) const;
  // {deliveries, total, hasMore, nextCursor}, newest first; `status` empty for all.
  state::Result<nlohmann::json> GetDeliveryHistory(const std::string& org,
                                                   const std::string& webhook, size_t limit,
                                                   const std::string& cursor,
                                                   const std::string& status) const;
  state::Result<nlohmann::json> GetDelivery(const std::string& org, const std::string& id) const;
  state::Result<nlohmann::json> GetCircuitState(const std::string& org,
                                                const std::string& webhook) const;
  // The seeds' WebhookHealthMetrics over the hours that start in [start_ms, end_ms).
  state::Result<nlohmann::json> GetHealthMetrics(const std::string& org, const std::string& webhook,
                                                 int64_t start_ms, int64_t end_ms) const;

 private:
  std::optional<nlohmann::json> Endpoint(const std::string& org, const std::string& id) const;

  WebhooksStoreViews v_;
};

}  // namespace cm::webhooks
