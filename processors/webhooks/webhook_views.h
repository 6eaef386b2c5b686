#pragma once

#include <nlohmann/json.hpp>
#include <string>

// What the API shows of stored records: the seeds' field names, without the signing secrets
// and the bookkeeping fields (the *Ms times, leases) the processor keeps beside them.
namespace cm::webhooks {

// The seeds' Webhook (no secret: it is shown once, when made or rotated), with stats and the
// circuit's state.
nlohmann::json WebhookView(const nlohmann::json& endpoint);
// The seeds' Delivery, with every attempt.
nlohmann::json DeliveryView(const nlohmann::json& delivery);
// The seeds' DeliveryResult of a delivery's latest attempt.
nlohmann::json DeliveryResultView(const nlohmann::json& delivery);

}  // namespace cm::webhooks
