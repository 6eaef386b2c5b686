#include "processors/usage/usage_snapshot_schema.h"

#include <cstdio>
#include <memory>

#include "processors/usage/aggregate.h"
#include "processors/usage/org_settings.h"
#include "processors/usage/usage_stores.h"
#include "state/key_codec.h"

namespace cm::usage {

namespace {

using Row = topology::SnapshotTable::Row;
using Value = std::optional<std::string_view>;

// %.17g round-trips a double exactly, so Postgres holds the very figure HTTP reports.
std::string DoubleText(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

bool ReadTime(std::string_view key, size_t& pos, int64_t& out) {
  if (pos + 8 > key.size()) return false;
  out = state::ReadOrderedInt64(key.substr(pos));
  pos += 8;
  return true;
}

topology::SnapshotTable Aggregates(std::shared_ptr<const Catalog> catalog) {
  topology::SnapshotTable t;
  t.store = kAggregatesStore;
  t.table = "usage_aggregates";
  t.columns = {"organization_id", "metric_type", "granularity", "bucket_start", "dimension_key",
               "value",           "events",      "dimensions",  "aggregation"};
  t.key_columns = 5;
  t.decode = [catalog](std::string_view key, Value value) -> std::optional<Row> {
    auto parts = keys::ParseAggregateKey(key);
    if (!parts) return std::nullopt;
    const std::vector<std::string> dims = keys::SplitDimset(parts->dimset);
    Row row = {parts->org, parts->metric, GranularityName(parts->granularity),
               FormatTimestamp(parts->bucket_start), DimensionKey(dims, parts->values)};
    if (!value) return row;
    const MetricDefinition* metric = catalog->FindMetric(parts->metric);
    if (!metric) return std::nullopt;
    auto aggregate = Aggregate::Decode(metric->aggregation, *value);
    if (!aggregate) return std::nullopt;
    row.push_back(DoubleText(aggregate->Value(metric->aggregation)));
    row.push_back(std::to_string(aggregate->events));
    row.push_back(DimensionsJson(dims, parts->values).dump());
    row.push_back(AggregationName(metric->aggregation));
    return row;
  };
  return t;
}

topology::SnapshotTable Totals(std::shared_ptr<const Catalog> catalog) {
  topology::SnapshotTable t;
  t.store = kTotalsStore;
  t.table = "usage_totals";
  t.columns = {"organization_id", "metric_type", "period_start", "scope", "value", "events"};
  t.key_columns = 3;
  t.decode = [catalog](std::string_view key, Value value) -> std::optional<Row> {
    size_t pos = 0;
    std::string org, metric;
    if (!state::ReadLengthPrefixed(key, pos, org) || !state::ReadLengthPrefixed(key, pos, metric) ||
        pos >= key.size()) {
      return std::nullopt;
    }
    const char scope = key[pos++];
    int64_t period_start = 0;
    Row row = {org, metric};
    if (scope == 'P') {
      if (!ReadTime(key, pos, period_start)) return std::nullopt;
      row.push_back(FormatTimestamp(period_start));
    } else if (scope == 'L') {
      row.push_back("-infinity");
    } else {
      return std::nullopt;
    }
    if (pos != key.size()) return std::nullopt;
    if (!value) return row;
    const MetricDefinition* m = catalog->FindMetric(metric);
    if (!m) return std::nullopt;
    auto aggregate = Aggregate::Decode(m->aggregation, *value);
    if (!aggregate) return std::nullopt;
    row.push_back(scope == 'P' ? "period" : "lifetime");
    row.push_back(DoubleText(aggregate->Value(m->aggregation)));
    row.push_back(std::to_string(aggregate->events));
    return row;
  };
  return t;
}

topology::SnapshotTable Orgs() {
  topology::SnapshotTable t;
  t.store = kOrgsStore;
  t.table = "usage_org_settings";
  t.columns = {"organization_id", "plan", "plan_effective_from", "billing_anchor_day", "settings"};
  t.key_columns = 1;
  t.decode = [](std::string_view key, Value value) -> std::optional<Row> {
    Row row = {std::string(key)};
    if (!value) return row;
    auto json = nlohmann::json::parse(*value, nullptr, false);
    if (json.is_discarded() || !json.is_object()) return std::nullopt;
    const OrgSettings settings = OrgSettings::FromJson(json);
    if (settings.plan_history.empty()) {
      row.push_back(std::nullopt);
      row.push_back(std::nullopt);
    } else {
      row.push_back(settings.plan_history.back().plan);
      row.push_back(FormatTimestamp(settings.plan_history.back().effective_from));
    }
    row.push_back(std::to_string(settings.billing_anchor_day));
    row.push_back(settings.ToJson().dump());
    return row;
  };
  return t;
}

// usage-alerts keys: str org | 's' | str metric | subscriptionId, or
// str org | 'f' | str subscriptionId | time threshold*1000 | time periodStart.
topology::SnapshotTable AlertSubscriptions() {
  topology::SnapshotTable t;
  t.store = kAlertsStore;
  t.table = "usage_alert_subscriptions";
  t.columns = {"organization_id", "metric_type", "subscription_id", "subscription"};
  t.key_columns = 3;
  t.decode = [](std::string_view key, Value value) -> std::optional<Row> {
    size_t pos = 0;
    std::string org, metric;
    if (!state::ReadLengthPrefixed(key, pos, org) || pos >= key.size() || key[pos++] != 's' ||
        !state::ReadLengthPrefixed(key, pos, metric)) {
      return std::nullopt;
    }
    Row row = {org, metric, std::string(key.substr(pos))};
    if (!value) return row;
    auto json = nlohmann::json::parse(*value, nullptr, false);
    if (json.is_discarded()) return std::nullopt;
    row.push_back(json.dump());
    return row;
  };
  return t;
}

topology::SnapshotTable FiredAlerts() {
  topology::SnapshotTable t;
  t.store = kAlertsStore;
  t.table = "usage_fired_alerts";
  t.columns = {"organization_id", "subscription_id", "threshold", "period_start", "alert_id"};
  t.key_columns = 4;
  t.decode = [](std::string_view key, Value value) -> std::optional<Row> {
    size_t pos = 0;
    std::string org, subscription;
    int64_t threshold_milli = 0, period_start = 0;
    if (!state::ReadLengthPrefixed(key, pos, org) || pos >= key.size() || key[pos++] != 'f' ||
        !state::ReadLengthPrefixed(key, pos, subscription) ||
        !ReadTime(key, pos, threshold_milli) || !ReadTime(key, pos, period_start) ||
        pos != key.size()) {
      return std::nullopt;
    }
    Row row = {org, subscription, DoubleText(static_cast<double>(threshold_milli) / 1000.0),
               FormatTimestamp(period_start)};
    if (value) row.push_back(std::string(*value));
    return row;
  };
  return t;
}

}  // namespace

topology::SnapshotSchema UsageSnapshotSchema(const Catalog& catalog) {
  auto shared = std::make_shared<const Catalog>(catalog);
  topology::SnapshotSchema schema;
  schema.tables = {Aggregates(shared), Totals(shared), Orgs(), AlertSubscriptions(), FiredAlerts()};
  return schema;
}

}  // namespace cm::usage
