#include "processors/webhooks/webhook_views.h"

#include "processors/webhooks/circuit_breaker.h"

namespace cm::webhooks {

using nlohmann::json;

json WebhookView(const json& e) {
  json v = {{"id", e.value("id", "")},
            {"organizationId", e.value("organizationId", "")},
            {"url", e.value("url", "")},
            {"events", e.value("events", json::array())},
            {"active", e.value("active", true)},
            {"description", e.value("description", "")},
            {"headers", e.value("headers", json::object())},
            {"createdBy", e.value("createdBy", "")},
            {"createdAt", e.value("createdAt", "")},
            {"updatedAt", e.value("updatedAt", "")},
            {"stats", e.value("stats", json::object())},
            {"circuitState", std::string(CircuitBreaker::StateName(
                                 CircuitBreaker::FromJson(e.value("circuit", json())).state()))}};
  if (e.contains("disabledReason")) v["disabledReason"] = e["disabledReason"];
  return v;
}

json DeliveryView(const json& d) {
  json v = d;
  for (const char* internal : {"leaseUntilMs", "createdAtMs", "scheduledAtMs", "retryBaseMs"})
    v.erase(internal);
  return v;
}

json DeliveryResultView(const json& d) {
  const std::string status = d.value("status", "");
  json r = {{"deliveryId", d.value("id", "")},
            {"success", status == "succeeded"},
            {"status", status},
            {"attemptNumber", d.value("attemptNumber", 0)},
            {"responseTimeMs", d.value("responseTimeMs", json())},
            {"willRetry", status == "pending" && d.value("attemptNumber", 0) > 0}};
  if (d.contains("responseStatus")) r["statusCode"] = d["responseStatus"];
  if (d.contains("errorMessage")) r["error"] = d["errorMessage"];
  if (status == "pending" && d.contains("scheduledAt")) r["nextRetryAt"] = d["scheduledAt"];
  return r;
}

}  // namespace cm::webhooks
