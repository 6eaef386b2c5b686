#include "processors/usage/metric_catalog.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

namespace cm::usage {

using nlohmann::json;
using state::Result;
using state::Status;

namespace {

constexpr char kDefaultCatalogJson[] = R"CATALOG(
{
  "defaultPlan": "free",
  "metrics": [
    {"metricType": "api_calls", "description": "API calls", "unit": "calls",
     "eventTypes": ["api.call"], "aggregation": "count",
     "groupBy": ["userId", "resourceType"], "quotaScope": "period"},
    {"metricType": "storage_bytes", "description": "Stored bytes (uploads minus deletes)", "unit": "bytes",
     "eventTypes": ["storage.upload", "storage.delete"], "negateEventTypes": ["storage.delete"],
     "aggregation": "sum", "valueProperty": "quantity",
     "groupBy": ["userId", "resourceType"], "quotaScope": "lifetime"},
    {"metricType": "documents", "description": "Documents created", "unit": "documents",
     "eventTypes": ["document.created"], "aggregation": "count",
     "groupBy": ["userId"], "quotaScope": "period"},
    {"metricType": "collaborators", "description": "Distinct collaborators who joined a session", "unit": "users",
     "eventTypes": ["presence.joined"], "aggregation": "unique_count", "valueProperty": "userId",
     "groupBy": ["resourceId"], "quotaScope": "period"},
    {"metricType": "compute_seconds", "description": "Compute time", "unit": "seconds",
     "eventTypes": ["compute.used"], "aggregation": "sum", "valueProperty": "quantity",
     "groupBy": ["userId", "resourceType"], "quotaScope": "period"},
    {"metricType": "active_users", "description": "Distinct users with any event", "unit": "users",
     "eventTypes": ["*"], "aggregation": "unique_count", "valueProperty": "userId",
     "onMissingValue": "skip", "groupBy": [], "quotaScope": "period"},
    {"metricType": "events", "description": "Accepted events of any type", "unit": "events",
     "eventTypes": ["*"], "aggregation": "count",
     "groupBy": ["userId", "eventType", "resourceType"], "quotaScope": "period"},
    {"metricType": "document_activity", "description": "Events on documents", "unit": "events",
     "eventTypes": ["*"], "where": {"resourceType": "document"}, "aggregation": "count",
     "groupBy": ["resourceId", "userId"], "quotaScope": "period"}
  ],
  "plans": [
    {"name": "free", "displayName": "Free", "basePrice": 0, "currency": "USD", "maxTeams": 50,
     "metrics": {
       "api_calls": {"limit": 10000},
       "storage_bytes": {"limit": 1073741824},
       "documents": {"limit": 100},
       "collaborators": {"limit": 5},
       "compute_seconds": {"limit": 3600},
       "active_users": {"limit": 5}}},
    {"name": "pro", "displayName": "Pro", "basePrice": 49, "currency": "USD", "maxTeams": 500,
     "metrics": {
       "api_calls": {"limit": 1000000, "included": 500000, "unitPrice": 0.05, "pricePer": 1000},
       "storage_bytes": {"limit": 107374182400, "included": 53687091200, "unitPrice": 0.10, "pricePer": 1073741824},
       "documents": {"limit": 10000},
       "collaborators": {"limit": 50},
       "compute_seconds": {"limit": 360000, "included": 36000, "unitPrice": 0.01, "pricePer": 60},
       "active_users": {"limit": 50}}},
    {"name": "enterprise", "displayName": "Enterprise", "basePrice": 499, "currency": "USD", "maxTeams": null,
     "metrics": {
       "api_calls": {"limit": null, "included": 10000000, "unitPrice": 0.02, "pricePer": 1000},
       "storage_bytes": {"limit": null, "included": 1099511627776, "unitPrice": 0.05, "pricePer": 1073741824},
       "documents": {"limit": null},
       "collaborators": {"limit": null},
       "compute_seconds": {"limit": null, "included": 360000, "unitPrice": 0.005, "pricePer": 60},
       "active_users": {"limit": null}}}
  ],
  "dashboard": {
    "topUsersMetric": "events",
    "topDocumentsMetric": "document_activity",
    "activeUsersMetric": "active_users",
    "openDocumentsMetric": "document_activity",
    "topN": 10
  }
}
)CATALOG";

Status Invalid(const std::string& where, const std::string& what) {
  return Status::InvalidArgument("catalog: " + where + ": " + what);
}

bool ValidName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

Result<std::vector<std::string>> StringList(const json& j, const std::string& where) {
  if (!j.is_array()) return Invalid(where, "must be an array of strings");
  std::vector<std::string> out;
  for (const auto& e : j) {
    if (!e.is_string() || e.get_ref<const std::string&>().empty()) {
      return Invalid(where, "must be an array of non-empty strings");
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<int64_t> Micros(double v) {
  if (!std::isfinite(v) || v < 0 || v > 1e12) return Status::InvalidArgument("out of range");
  return static_cast<int64_t>(std::llround(v * 1e6));
}

Result<MetricDefinition> ParseMetric(const json& m, size_t index) {
  std::string where = "metrics[" + std::to_string(index) + "]";
  if (!m.is_object()) return Invalid(where, "must be an object");
  MetricDefinition d;
  if (!m.contains("metricType") || !m["metricType"].is_string() ||
      !ValidName(m["metricType"].get_ref<const std::string&>())) {
    return Invalid(where, "metricType must match [a-z0-9_]{1,64}");
  }
  d.metric_type = m["metricType"].get<std::string>();
  where = "metric " + d.metric_type;
  for (const auto& [key, _] : m.items()) {
    static const std::set<std::string> kKnown = {
        "metricType",    "description",      "unit",    "eventTypes",
        "eventType",     "negateEventTypes", "where",   "aggregation",
        "valueProperty", "onMissingValue",   "groupBy", "quotaScope"};
    if (!kKnown.count(key)) return Invalid(where, "unknown field '" + key + "'");
  }
  d.description = m.value("description", d.metric_type);
  d.unit = m.value("unit", "");
  if (m.contains("eventType")) {
    if (!m["eventType"].is_string()) return Invalid(where, "eventType must be a string");
    d.event_types.push_back(m["eventType"].get<std::string>());
  }
  if (m.contains("eventTypes")) {
    auto l = StringList(m["eventTypes"], where + ".eventTypes");
    if (!l.ok()) return l.status();
    d.event_types.insert(d.event_types.end(), l->begin(), l->end());
  }
  if (d.event_types.empty()) return Invalid(where, "needs eventTypes (\"*\" for every event)");
  if (!m.contains("aggregation") || !m["aggregation"].is_string()) {
    return Invalid(where, "aggregation is required: count, sum, unique_count, max or latest");
  }
  auto agg = ParseAggregation(m["aggregation"].get<std::string>());
  if (!agg) {
    return Invalid(where, "aggregation '" + m["aggregation"].get<std::string>() +
                              "' is not count, sum, unique_count, max or latest");
  }
  d.aggregation = *agg;
  if (m.contains("valueProperty")) {
    if (!m["valueProperty"].is_string() ||
        !IsValidPropertyPath(m["valueProperty"].get<std::string>())) {
      return Invalid(where,
                     "valueProperty must be quantity, userId, resourceId, resourceType, "
                     "eventType or metadata.<path>");
    }
    d.value_property = m["valueProperty"].get<std::string>();
  }
  if (d.aggregation != Aggregation::kCount && d.value_property.empty()) {
    return Invalid(where, std::string(AggregationName(d.aggregation)) + " needs a valueProperty");
  }
  if ((d.aggregation == Aggregation::kSum || d.aggregation == Aggregation::kMax ||
       d.aggregation == Aggregation::kLatest) &&
      d.value_property != "quantity" && d.value_property.rfind("metadata.", 0) != 0) {
    return Invalid(where, "a numeric aggregation needs valueProperty quantity or metadata.<path>");
  }
  if (m.contains("negateEventTypes")) {
    auto l = StringList(m["negateEventTypes"], where + ".negateEventTypes");
    if (!l.ok()) return l.status();
    if (d.aggregation != Aggregation::kSum && !l->empty()) {
      return Invalid(where, "negateEventTypes is only meaningful for sum");
    }
    for (const auto& t : *l) {
      if (std::find(d.event_types.begin(), d.event_types.end(), t) == d.event_types.end()) {
        return Invalid(where, "negateEventTypes '" + t + "' is not one of its eventTypes");
      }
    }
    d.negate_event_types = *l;
  }
  if (m.contains("where")) {
    if (!m["where"].is_object()) return Invalid(where, "where must be an object");
    for (const auto& [k, v] : m["where"].items()) {
      if (!IsValidPropertyPath(k) || !v.is_string()) {
        return Invalid(where, "where needs property names mapped to strings ('" + k + "')");
      }
      d.where[k] = v.get<std::string>();
    }
  }
  std::string missing = m.value("onMissingValue", "reject");
  if (missing != "reject" && missing != "skip")
    return Invalid(where, "onMissingValue must be reject or skip");
  d.skip_if_missing = missing == "skip";
  if (m.contains("groupBy")) {
    auto l = StringList(m["groupBy"], where + ".groupBy");
    if (!l.ok()) return l.status();
    for (const auto& dim : *l) {
      if (!IsValidPropertyPath(dim) || dim == "quantity" || dim.find(',') != std::string::npos) {
        return Invalid(where, "groupBy '" + dim +
                                  "' is not a dimension (userId, resourceId, "
                                  "resourceType, eventType, metadata.<path>)");
      }
    }
    d.group_by = *l;
    std::sort(d.group_by.begin(), d.group_by.end());
    if (std::adjacent_find(d.group_by.begin(), d.group_by.end()) != d.group_by.end()) {
      return Invalid(where, "groupBy lists a dimension twice");
    }
    if (d.group_by.size() > 4) return Invalid(where, "groupBy allows at most 4 dimensions");
  }
  std::string scope = m.value("quotaScope", "period");
  if (scope != "period" && scope != "lifetime")
    return Invalid(where, "quotaScope must be period or lifetime");
  d.quota_scope = scope == "period" ? QuotaScope::kPeriod : QuotaScope::kLifetime;
  return d;
}

Result<Plan> ParsePlan(const json& p, size_t index, const std::set<std::string>& metric_names) {
  std::string where = "plans[" + std::to_string(index) + "]";
  if (!p.is_object()) return Invalid(where, "must be an object");
  Plan plan;
  if (!p.contains("name") || !p["name"].is_string() || !ValidName(p["name"].get<std::string>())) {
    return Invalid(where, "name must match [a-z0-9_]{1,64}");
  }
  plan.name = p["name"].get<std::string>();
  where = "plan " + plan.name;
  plan.display_name = p.value("displayName", plan.name);
  plan.currency = p.value("currency", "USD");
  if (p.contains("basePrice")) {
    if (!p["basePrice"].is_number()) return Invalid(where, "basePrice must be a number");
    plan.base_price = p["basePrice"].get<double>();
    auto micros = Micros(plan.base_price);
    if (!micros.ok()) return Invalid(where, "basePrice must be between 0 and 1e12");
    plan.base_price_micros = *micros;
  }
  if (p.contains("maxTeams") && !p["maxTeams"].is_null()) {
    if (!p["maxTeams"].is_number_integer() || p["maxTeams"].get<int64_t>() < 0)
      return Invalid(where, "maxTeams must be an integer >= 0, or null for unlimited");
    plan.max_teams = p["maxTeams"].get<int64_t>();
  }
  if (p.contains("metrics")) {
    if (!p["metrics"].is_object()) return Invalid(where, "metrics must be an object");
    for (const auto& [name, v] : p["metrics"].items()) {
      std::string w = where + ".metrics." + name;
      if (!metric_names.count(name)) return Invalid(w, "no such metric in the catalog");
      if (!v.is_object()) return Invalid(w, "must be an object");
      PlanMetric pm;
      if (v.contains("limit") && !v["limit"].is_null()) {
        if (!v["limit"].is_number() || !std::isfinite(v["limit"].get<double>()) ||
            v["limit"].get<double>() < 0) {
          return Invalid(w, "limit must be a number >= 0, or null for unlimited");
        }
        pm.limit = v["limit"].get<double>();
      }
      if (v.contains("included") && !v["included"].is_null()) {
        if (!v["included"].is_number() || v["included"].get<double>() < 0) {
          return Invalid(w, "included must be a number >= 0");
        }
        pm.included = v["included"].get<double>();
      } else {
        pm.included = pm.limit;
      }
      if (v.contains("unitPrice")) {
        if (!v["unitPrice"].is_number()) return Invalid(w, "unitPrice must be a number");
        pm.unit_price = v["unitPrice"].get<double>();
        auto micros = Micros(pm.unit_price);
        if (!micros.ok()) return Invalid(w, "unitPrice must be between 0 and 1e12");
        pm.unit_price_micros = *micros;
      }
      if (v.contains("pricePer")) {
        if (!v["pricePer"].is_number_integer() || v["pricePer"].get<int64_t>() < 1) {
          return Invalid(w, "pricePer must be an integer >= 1");
        }
        pm.price_per = v["pricePer"].get<int64_t>();
      }
      plan.metrics[name] = pm;
    }
  }
  return plan;
}

}  // namespace

bool IsValidPropertyPath(std::string_view p) {
  static const std::set<std::string_view> kTop = {
      "eventId", "organizationId", "userId", "eventType", "resourceId", "resourceType", "quantity"};
  if (kTop.count(p)) return true;
  if (p.rfind("metadata.", 0) != 0 || p.size() == 9) return false;
  std::string_view rest = p.substr(9);
  return rest.front() != '.' && rest.back() != '.' && rest.find("..") == std::string_view::npos;
}

bool MetricDefinition::Matches(const UsageEvent& e) const {
  bool type_ok = false;
  for (const auto& t : event_types) {
    if (t == "*" || t == e.event_type) {
      type_ok = true;
      break;
    }
  }
  if (!type_ok) return false;
  for (const auto& [prop, value] : where) {
    auto v = e.TextProperty(prop);
    if (!v || *v != value) return false;
  }
  return true;
}

bool MetricDefinition::Negates(std::string_view event_type) const {
  return std::find(negate_event_types.begin(), negate_event_types.end(), event_type) !=
         negate_event_types.end();
}

bool MetricDefinition::AllowsDimension(std::string_view dimension) const {
  return std::find(group_by.begin(), group_by.end(), dimension) != group_by.end();
}

json MetricDefinition::ToJson() const {
  json j = {{"metricType", metric_type},
            {"description", description},
            {"unit", unit},
            {"eventTypes", event_types},
            {"aggregation", AggregationName(aggregation)},
            {"groupBy", group_by},
            {"quotaScope", quota_scope == QuotaScope::kPeriod ? "period" : "lifetime"}};
  if (!value_property.empty()) j["valueProperty"] = value_property;
  if (!negate_event_types.empty()) j["negateEventTypes"] = negate_event_types;
  if (!where.empty()) j["where"] = where;
  if (skip_if_missing) j["onMissingValue"] = "skip";
  return j;
}

const PlanMetric* Plan::Find(std::string_view metric) const {
  auto it = metrics.find(std::string(metric));
  return it == metrics.end() ? nullptr : &it->second;
}

const MetricDefinition* Catalog::FindMetric(std::string_view metric_type) const {
  for (const auto& m : metrics) {
    if (m.metric_type == metric_type) return &m;
  }
  return nullptr;
}

const Plan* Catalog::FindPlan(std::string_view name) const {
  for (const auto& p : plans) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::vector<std::string> Catalog::MetricTypes() const {
  std::vector<std::string> out;
  for (const auto& m : metrics) out.push_back(m.metric_type);
  return out;
}

std::vector<std::string> Catalog::PlanNames() const {
  std::vector<std::string> out;
  for (const auto& p : plans) out.push_back(p.name);
  return out;
}

Result<Catalog> ParseCatalog(const json& j) {
  if (!j.is_object()) return Invalid("top level", "must be an object");
  for (const auto& [key, _] : j.items()) {
    if (key != "defaultPlan" && key != "metrics" && key != "plans" && key != "dashboard") {
      return Invalid("top level", "unknown field '" + key + "'");
    }
  }
  Catalog c;
  if (!j.contains("metrics") || !j["metrics"].is_array() || j["metrics"].empty()) {
    return Invalid("metrics", "must be a non-empty array");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < j["metrics"].size(); ++i) {
    auto m = ParseMetric(j["metrics"][i], i);
    if (!m.ok()) return m.status();
    if (!names.insert(m->metric_type).second) {
      return Invalid("metric " + m->metric_type, "metricType is defined twice");
    }
    c.metrics.push_back(std::move(m).value());
  }
  if (!j.contains("plans") || !j["plans"].is_array() || j["plans"].empty()) {
    return Invalid("plans", "must be a non-empty array");
  }
  std::set<std::string> plan_names;
  for (size_t i = 0; i < j["plans"].size(); ++i) {
    auto p = ParsePlan(j["plans"][i], i, names);
    if (!p.ok()) return p.status();
    if (!plan_names.insert(p->name).second)
      return Invalid("plan " + p->name, "name is defined twice");
    c.plans.push_back(std::move(p).value());
  }
  c.default_plan = j.value("defaultPlan", c.plans.front().name);
  if (!c.FindPlan(c.default_plan))
    return Invalid("defaultPlan", "'" + c.default_plan + "' is not a plan");
  if (j.contains("dashboard")) {
    const json& d = j["dashboard"];
    if (!d.is_object()) return Invalid("dashboard", "must be an object");
    c.dashboard.top_users_metric = d.value("topUsersMetric", c.dashboard.top_users_metric);
    c.dashboard.top_documents_metric =
        d.value("topDocumentsMetric", c.dashboard.top_documents_metric);
    c.dashboard.active_users_metric = d.value("activeUsersMetric", c.dashboard.active_users_metric);
    c.dashboard.open_documents_metric =
        d.value("openDocumentsMetric", c.dashboard.open_documents_metric);
    c.dashboard.top_n = d.value("topN", c.dashboard.top_n);
    if (c.dashboard.top_n < 1 || c.dashboard.top_n > 100)
      return Invalid("dashboard.topN", "must be 1..100");
  }
  // Dashboard metrics are optional (the dashboard leaves out what the catalog lacks), but when
  // present they must allow the dimension the dashboard groups by.
  auto check_dim = [&c](const std::string& metric, const char* dim, const char* field) -> Status {
    const MetricDefinition* m = c.FindMetric(metric);
    if (m && !m->AllowsDimension(dim)) {
      return Invalid(std::string("dashboard.") + field,
                     "metric " + metric + " must allow groupBy " + dim);
    }
    return Status::OK();
  };
  if (auto s = check_dim(c.dashboard.top_users_metric, "userId", "topUsersMetric"); !s.ok())
    return s;
  if (auto s = check_dim(c.dashboard.top_documents_metric, "resourceId", "topDocumentsMetric");
      !s.ok())
    return s;
  if (auto s = check_dim(c.dashboard.open_documents_metric, "resourceId", "openDocumentsMetric");
      !s.ok())
    return s;
  if (const MetricDefinition* m = c.FindMetric(c.dashboard.active_users_metric);
      m && m->aggregation != Aggregation::kUniqueCount) {
    return Invalid("dashboard.activeUsersMetric", "must be a unique_count metric");
  }
  return c;
}

Result<Catalog> LoadCatalog(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("catalog file " + path + " cannot be opened");
  std::stringstream buffer;
  buffer << in.rdbuf();
  json j = json::parse(buffer.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return Status::InvalidArgument("catalog file " + path + " is not valid JSON");
  auto c = ParseCatalog(j);
  if (!c.ok()) return Status::InvalidArgument(path + ": " + c.status().message());
  return c;
}

const char* DefaultCatalogJson() { return kDefaultCatalogJson; }

const Catalog& DefaultCatalog() {
  static const Catalog catalog = [] {
    auto c = ParseCatalog(json::parse(kDefaultCatalogJson));
    if (!c.ok()) throw std::logic_error("built-in usage catalog: " + c.status().ToString());
    return std::move(c).value();
  }();
  return catalog;
}

}  // namespace cm::usage
