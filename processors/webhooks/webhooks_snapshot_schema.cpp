#include "processors/webhooks/webhooks_snapshot_schema.h"

#include <map>
#include <nlohmann/json.hpp>

#include "processors/webhooks/circuit_breaker.h"
#include "processors/webhooks/webhooks_stores.h"
#include "state/key_codec.h"
#include "topology/processor/snapshot_fields.h"

namespace cm::webhooks {

namespace {

using nlohmann::json;
using Row = topology::SnapshotTable::Row;
using Field = topology::SnapshotTable::Field;
using Value = std::optional<std::string_view>;

// The org and id of a key `tag` str org str id (webhooks_stores.h); nullopt for another tag
// (the event records, the history index) or a bad key.
std::optional<Row> Keys(std::string_view key, char tag) {
  auto fields = state::ParseTaggedKey(key, tag, 2);
  if (!fields) return std::nullopt;
  return Row(fields->begin(), fields->end());
}

using topology::SnapshotBool;
using topology::SnapshotNumber;
using topology::SnapshotObject;
using topology::SnapshotText;

topology::SnapshotTable Endpoints() {
  topology::SnapshotTable t;
  t.store = kEndpointsStore;
  t.table = "webhooks_endpoints";
  t.columns = {"organization_id",
               "webhook_id",
               "url",
               "events",
               "active",
               "description",
               "headers",
               "created_by",
               "created_at",
               "updated_at",
               "disabled_reason",
               "circuit_state",
               "total_deliveries",
               "successful_deliveries",
               "failed_deliveries",
               "average_response_time_ms",
               "last_delivery_at",
               "last_delivery_status"};
  t.key_columns = 2;
  t.decode = [](std::string_view key, Value value) -> std::optional<Row> {
    auto row = Keys(key, 'w');
    if (!row) return std::nullopt;
    if (!value) return row;
    auto e = SnapshotObject(*value);
    if (!e) return std::nullopt;
    // Column by column from the record: "secrets" is never read, so no secret can reach a row.
    row->push_back(SnapshotText(*e, "url"));
    row->push_back(e->value("events", json::array()).dump());
    row->push_back(SnapshotBool(*e, "active", true));
    row->push_back(SnapshotText(*e, "description"));
    row->push_back(e->value("headers", json::object()).dump());
    for (const char* c : {"createdBy", "createdAt", "updatedAt", "disabledReason"})
      row->push_back(SnapshotText(*e, c));
    row->push_back(std::string(
        CircuitBreaker::StateName(CircuitBreaker::FromJson(e->value("circuit", json())).state())));
    const json stats = e->value("stats", json::object());
    for (const char* c :
         {"totalDeliveries", "successfulDeliveries", "failedDeliveries", "averageResponseTimeMs"}) {
      Field n = SnapshotNumber(stats, c);
      row->push_back(n ? std::move(n) : Field("0"));
    }
    for (const char* c : {"lastDeliveryAt", "lastDeliveryStatus"})
      row->push_back(SnapshotText(stats, c));
    return row;
  };
  return t;
}

topology::SnapshotTable Deliveries() {
  topology::SnapshotTable t;
  t.store = kDeliveriesStore;
  t.table = "webhooks_deliveries";
  t.columns = {"organization_id", "delivery_id",     "webhook_id",       "event_id",
               "event_type",      "status",          "attempt_number",   "scheduled_at",
               "attempted_at",    "response_status", "response_time_ms", "error_class",
               "error_message",   "created_at",      "finished_at"};
  t.key_columns = 2;
  t.decode = [](std::string_view key, Value value) -> std::optional<Row> {
    auto row = Keys(key, 'd');  // 'e' (events) and 'h' (history) entries have no row
    if (!row) return std::nullopt;
    if (!value) return row;
    auto d = SnapshotObject(*value);
    if (!d) return std::nullopt;
    for (const char* c : {"webhookId", "eventId", "eventType", "status"})
      row->push_back(SnapshotText(*d, c));
    Field attempts = SnapshotNumber(*d, "attemptNumber");
    row->push_back(attempts ? std::move(attempts) : Field("0"));
    for (const char* c : {"scheduledAt", "attemptedAt"}) row->push_back(SnapshotText(*d, c));
    for (const char* c : {"responseStatus", "responseTimeMs"})
      row->push_back(SnapshotNumber(*d, c));
    for (const char* c : {"errorClass", "errorMessage", "createdAt", "finishedAt"})
      row->push_back(SnapshotText(*d, c));
    return row;
  };
  return t;
}

topology::SnapshotTable Attempts() {
  topology::SnapshotTable t;
  t.store = kDeliveriesStore;
  t.table = "webhooks_attempts";
  t.columns = {"organization_id", "delivery_id",     "attempt_number",   "webhook_id",
               "attempted_at",    "response_status", "response_time_ms", "success",
               "error_class",     "error_message"};
  t.key_columns = 3;
  t.entry_columns = 2;  // a delivery's attempts are replaced together
  t.decode_rows = [](std::string_view key, Value value) -> std::optional<std::vector<Row>> {
    auto keys = Keys(key, 'd');
    if (!keys) return std::nullopt;
    if (!value) return std::vector<Row>{*keys};
    auto d = SnapshotObject(*value);
    if (!d) return std::nullopt;
    const Field webhook = SnapshotText(*d, "webhookId");
    // By attempt number: the key of a row, so a number seen twice (it should not be) keeps the
    // later entry rather than failing the snapshot's upsert.
    std::map<int64_t, Row> by_number;
    const json attempts = d->value("attempts", json::array());
    if (!attempts.is_array()) return std::vector<Row>{};
    for (const auto& a : attempts) {
      if (!a.is_object() || !a.contains("attemptNumber") ||
          !a["attemptNumber"].is_number_integer() || !a.contains("attemptedAt"))
        continue;
      Row row = *keys;
      row.push_back(a["attemptNumber"].dump());
      row.push_back(webhook);
      row.push_back(SnapshotText(a, "attemptedAt"));
      row.push_back(SnapshotNumber(a, "responseStatus"));
      Field ms = SnapshotNumber(a, "responseTimeMs");
      row.push_back(ms ? std::move(ms) : Field("0"));
      row.push_back(SnapshotBool(a, "success", false));
      for (const char* c : {"errorClass", "errorMessage"}) row.push_back(SnapshotText(a, c));
      by_number.insert_or_assign(a["attemptNumber"].get<int64_t>(), std::move(row));
    }
    std::vector<Row> rows;
    rows.reserve(by_number.size());
    for (auto& [number, row] : by_number) rows.push_back(std::move(row));
    return rows;
  };
  return t;
}

}  // namespace

topology::SnapshotSchema WebhooksSnapshotSchema() {
  return {{Endpoints(), Deliveries(), Attempts()}};
}

}  // namespace cm::webhooks
