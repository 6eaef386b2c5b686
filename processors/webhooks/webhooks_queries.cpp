#include "processors/webhooks/webhooks_queries.h"

#include <cmath>

#include "processors/webhooks/circuit_breaker.h"
#include "processors/webhooks/latency_histogram.h"
#include "processors/webhooks/webhook_views.h"
#include "state/key_codec.h"
#include "topology/common/crypto.h"
#include "topology/common/timestamp.h"

namespace cm::webhooks {

using nlohmann::json;
using state::Result;
using state::Status;

namespace {

json Parse(std::string_view v) {
  auto j = json::parse(v, nullptr, false);
  return j.is_discarded() ? json() : j;
}

double Round2(double v) { return std::round(v * 100.0) / 100.0; }

}  // namespace

std::optional<json> WebhooksQueries::Endpoint(const std::string& org, const std::string& id) const {
  auto v = v_.endpoints->Get(keys::Endpoint(org, id));
  if (!v) return std::nullopt;
  json j = Parse(*v);
  if (!j.is_object()) return std::nullopt;
  return j;
}

Result<json> WebhooksQueries::GetWebhook(const std::string& org, const std::string& id) const {
  auto e = Endpoint(org, id);
  if (!e) return Status::NotFound("no such webhook");
  return WebhookView(*e);
}

Result<json> WebhooksQueries::ListWebhooks(const std::string& org, size_t limit,
                                           const std::string& cursor) const {
  const std::string prefix = keys::EndpointsOf(org);
  std::string begin = prefix;
  if (!cursor.empty()) {
    auto after = topology::HexDecode(cursor);
    if (!after) return Status::InvalidArgument("cursor is not one this API returned");
    begin = keys::Endpoint(org, *after) + '\0';  // the first key after it
  }
  json webhooks = json::array();
  bool more = false;
  std::string last;
  v_.endpoints->Range(begin, state::PrefixSuccessor(prefix),
                      [&](std::string_view, std::string_view value) {
                        if (webhooks.size() == limit) {
                          more = true;
                          return false;
                        }
                        json e = Parse(value);
                        last = e.value("id", "");
                        webhooks.push_back(WebhookView(e));
                        return true;
                      });
  size_t total = 0;
  v_.endpoints->PrefixScan(prefix, [&](std::string_view, std::string_view) {
    ++total;
    return true;
  });
  json out = {{"webhooks", webhooks}, {"total", total}, {"hasMore", more}};
  out["nextCursor"] = more ? json(topology::HexEncode(last)) : json();
  return out;
}

Result<json> WebhooksQueries::GetEventDeliveryStatus(const std::string& org,
                                                     const std::string& event_id) const {
  auto v = v_.deliveries->Get(keys::Event(org, event_id));
  if (!v) return Status::NotFound("no deliveries of such an event");
  json event = Parse(*v);
  json deliveries = json::array();
  json summary = json::object();
  for (const auto& id : event.value("deliveries", json::array())) {
    if (!id.is_string()) continue;
    auto d = v_.deliveries->Get(keys::Delivery(org, id.get<std::string>()));
    if (!d) continue;
    json delivery = Parse(*d);
    summary[delivery.value("webhookId", "")] = {
        {"deliveryId", delivery.value("id", "")},
        {"status", delivery.value("status", "")},
        {"attempts", delivery.value("attemptNumber", 0)},
        {"lastAttemptAt", delivery.value("attemptedAt", json())},
        {"responseStatus", delivery.value("responseStatus", json())}};
    deliveries.push_back(DeliveryView(delivery));
  }
  return json{{"eventId", event_id},
              {"eventType", event.value("eventType", "")},
              {"occurredAt", event.value("occurredAt", "")},
              {"deliveries", deliveries},
              {"summary", summary}};
}

Result<json> WebhooksQueries::GetDeliveryHistory(const std::string& org, const std::string& webhook,
                                                 size_t limit, const std::string& cursor,
                                                 const std::string& status) const {
  if (!Endpoint(org, webhook)) return Status::NotFound("no such webhook");
  const std::string prefix = keys::HistoryOf(org, webhook);
  std::string begin = prefix;
  if (!cursor.empty()) {
    auto after = topology::HexDecode(cursor);
    if (!after || !after->starts_with(prefix))
      return Status::InvalidArgument("cursor is not one this API returned");
    begin = *after + '\0';
  }
  json deliveries = json::array();
  bool more = false;
  std::string last;
  v_.deliveries->Range(begin, state::PrefixSuccessor(prefix),
                       [&](std::string_view key, std::string_view value) {
                         if (!status.empty() && value != status) return true;
                         if (deliveries.size() == limit) {
                           more = true;
                           return false;
                         }
                         int64_t created = 0;
                         std::string id;
                         if (!keys::ParseHistory(key, created, id)) return true;
                         auto d = v_.deliveries->Get(keys::Delivery(org, id));
                         if (!d) return true;
                         deliveries.push_back(DeliveryView(Parse(*d)));
                         last = std::string(key);
                         return true;
                       });
  size_t total = 0;
  v_.deliveries->PrefixScan(prefix, [&](std::string_view, std::string_view value) {
    if (status.empty() || value == status) ++total;
    return true;
  });
  json out = {{"deliveries", deliveries}, {"total", total}, {"hasMore", more}};
  out["nextCursor"] = more ? json(topology::HexEncode(last)) : json();
  return out;
}

Result<json> WebhooksQueries::GetDelivery(const std::string& org, const std::string& id) const {
  auto d = v_.deliveries->Get(keys::Delivery(org, id));
  if (!d) return Status::NotFound("no such delivery");
  return Parse(*d);
}

Result<json> WebhooksQueries::GetCircuitState(const std::string& org,
                                              const std::string& webhook) const {
  auto e = Endpoint(org, webhook);
  if (!e) return Status::NotFound("no such webhook");
  return CircuitBreaker::FromJson(e->value("circuit", json())).ToCircuitState(webhook);
}

Result<json> WebhooksQueries::GetHealthMetrics(const std::string& org, const std::string& webhook,
                                               int64_t start_ms, int64_t end_ms) const {
  if (!Endpoint(org, webhook)) return Status::NotFound("no such webhook");
  LatencyHistogram total;
  const std::string from = keys::Health(org, webhook, start_ms - start_ms % 3'600'000);
  const std::string to = keys::Health(org, webhook, end_ms);
  v_.health->Range(from, to, [&](std::string_view, std::string_view value) {
    total.Merge(LatencyHistogram::FromJson(Parse(value)));
    return true;
  });
  json breakdown = json::array();
  const int64_t failures = total.count() - total.successes();
  for (const auto& [error_class, n] : total.errors()) {
    breakdown.push_back({{"errorClass", error_class},
                         {"count", n},
                         {"percentage", failures == 0 ? 0.0
                                                      : Round2(100.0 * static_cast<double>(n) /
                                                               static_cast<double>(failures))}});
  }
  return json{
      {"webhookId", webhook},
      {"startTime", topology::FormatTimestamp(start_ms)},
      {"endTime", topology::FormatTimestamp(end_ms)},
      {"successRate", total.count() == 0 ? 0.0
                                         : Round2(100.0 * static_cast<double>(total.successes()) /
                                                  static_cast<double>(total.count()))},
      {"averageLatencyMs", Round2(total.Average())},
      {"p95LatencyMs", Round2(total.Quantile(0.95))},
      {"p99LatencyMs", Round2(total.Quantile(0.99))},
      {"deliveriesInPeriod", total.count()},
      {"errorBreakdown", breakdown}};
}

}  // namespace cm::webhooks
