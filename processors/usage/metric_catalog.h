#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "processors/usage/aggregate.h"
#include "processors/usage/usage_event.h"
#include "state/status.h"

namespace cm::usage {

enum class QuotaScope { kPeriod, kLifetime };

// One meter (in the style of OpenMeter's meters). Catalog JSON, one object of "metrics":
//   metricType       [a-z0-9_]+, unique
//   description, unit  free text
//   eventTypes       event types it counts; "*" matches every event type
//   negateEventTypes (sum only) event types whose value is subtracted (storage.delete)
//   where            optional {property: value}: only events whose property equals value
//   aggregation      count | sum | unique_count | max | latest
//   valueProperty    required unless count: quantity, userId, resourceId, resourceType,
//                    eventType or metadata.<path>; numeric for sum/max/latest
//   onMissingValue   reject (default: the event goes to the DLQ) | skip (the event does not
//                    feed this metric)
//   groupBy          dimensions a query may group by: userId, resourceId, resourceType,
//                    eventType, metadata.<path> (at most 4)
//   quotaScope       period (usage within the billing period) | lifetime (all-time total)
struct MetricDefinition {
  std::string metric_type;
  std::string description;
  std::string unit;
  std::vector<std::string> event_types;
  std::vector<std::string> negate_event_types;
  std::map<std::string, std::string> where;
  Aggregation aggregation = Aggregation::kCount;
  std::string value_property;
  bool skip_if_missing = false;
  std::vector<std::string> group_by;  // sorted
  QuotaScope quota_scope = QuotaScope::kPeriod;

  bool Matches(const UsageEvent& event) const;
  bool Negates(std::string_view event_type) const;
  bool AllowsDimension(std::string_view dimension) const;
  nlohmann::json ToJson() const;
};

// What a plan says about one metric. Catalog JSON: {"limit": number|null (null or absent:
// unlimited), "included": number (default: the limit; everything when unlimited),
// "unitPrice": price of pricePer units of overage (default 0), "pricePer": integer >= 1}.
struct PlanMetric {
  std::optional<double> limit;
  std::optional<double> included;
  double unit_price = 0;
  int64_t unit_price_micros = 0;  // unit_price in millionths, for exact amounts
  int64_t price_per = 1;
};

// Catalog JSON, one object of "plans": {"name", "displayName", "basePrice", "currency",
// "maxTeams", "metrics": {metricType: PlanMetric}}. A metric a plan does not list is unlimited;
// "maxTeams" (absent or null: unlimited) is how many teams the teams application lets an
// organization on the plan have.
struct Plan {
  std::string name;
  std::string display_name;
  double base_price = 0;
  int64_t base_price_micros = 0;
  std::string currency = "USD";
  std::optional<int64_t> max_teams;
  std::map<std::string, PlanMetric> metrics;

  const PlanMetric* Find(std::string_view metric) const;
};

// Which metrics the dashboard reads. Catalog JSON "dashboard": {"topUsersMetric" (grouped by
// userId), "topDocumentsMetric" (grouped by resourceId), "activeUsersMetric" (unique_count),
// "openDocumentsMetric" (grouped by resourceId), "topN"}.
struct DashboardConfig {
  std::string top_users_metric = "events";
  std::string top_documents_metric = "document_activity";
  std::string active_users_metric = "active_users";
  std::string open_documents_metric = "document_activity";
  int top_n = 10;
};

// The metric catalog and the plans. JSON: {"defaultPlan", "metrics": [...], "plans": [...],
// "dashboard": {...}}; processors/usage/default_catalog.json is the built-in default.
struct Catalog {
  std::vector<MetricDefinition> metrics;
  std::vector<Plan> plans;
  std::string default_plan = "free";
  DashboardConfig dashboard;

  const MetricDefinition* FindMetric(std::string_view metric_type) const;
  const Plan* FindPlan(std::string_view name) const;
  std::vector<std::string> MetricTypes() const;
  std::vector<std::string> PlanNames() const;
};

// The catalog's valid dimension / property names.
bool IsValidPropertyPath(std::string_view path);

state::Result<Catalog> ParseCatalog(const nlohmann::json& json);
// Reads and validates a catalog file; errors name the file and the offending field.
state::Result<Catalog> LoadCatalog(const std::string& path);
// The built-in default (the same content as processors/usage/default_catalog.json).
const Catalog& DefaultCatalog();
const char* DefaultCatalogJson();

}  // namespace cm::usage
