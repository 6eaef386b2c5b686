#include "processors/usage/usage_queries.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "processors/usage/aggregate_reader.h"
#include "processors/usage/org_settings.h"
#include "processors/usage/usage_stores.h"

namespace cm::usage {

using nlohmann::json;
using state::Result;
using state::Status;

namespace {

Status Bad(std::string msg) { return Status::InvalidArgument(std::move(msg)); }

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// "400 days", "6 hours", "90 minutes", "1500 ms": a configured range in an error message.
std::string DurationText(int64_t ms) {
  for (auto [unit, name] : {std::pair{kDayMs, " days"}, std::pair{kHourMs, " hours"},
                            std::pair{kMinuteMs, " minutes"}}) {
    if (ms % unit == 0) return std::to_string(ms / unit) + name;
  }
  return std::to_string(ms) + " ms";
}

double Round2(double v) { return std::round(v * 100.0) / 100.0; }

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// The figure of a total store entry.
std::optional<Aggregate> ReadTotal(state::ReadOnlyKeyValueStore& totals, const MetricDefinition& m,
                                   const std::string& key) {
  auto v = totals.Get(key);
  if (!v) return std::nullopt;
  return Aggregate::Decode(m.aggregation, *v);
}

// Exact quantity in nano-units of an aggregate's figure.
Nanos QuantityNanos(const MetricDefinition& m, const Aggregate& a) {
  switch (m.aggregation) {
    case Aggregation::kSum:
      return a.sum;
    case Aggregation::kCount:
      return static_cast<Nanos>(a.events) * kNanosPerUnit;
    default:
      return ToNanos(a.Value(m.aggregation));
  }
}

// Rounds value (in units of 10^-scale_digits) to cents, half away from zero.
int64_t RoundToCents(Nanos value, Nanos divisor) {
  const Nanos q = value / divisor;
  const Nanos r = value % divisor;
  Nanos cents = q;
  if (r * 2 >= divisor) cents += 1;
  if (r * 2 <= -divisor) cents -= 1;
  return static_cast<int64_t>(cents);
}

json Money(int64_t cents) { return NumberJson(static_cast<double>(cents) / 100.0); }

std::string CsvField(const json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : (v.is_null() ? "" : v.dump());
  // A text cell that starts like a formula would be run by a spreadsheet that opens the report
  // (organization and user ids are the client's): a leading ' makes it text (OWASP's advice).
  if (v.is_string() && !s.empty() &&
      std::string_view("=+-@\t\r").find(s[0]) != std::string_view::npos)
    s.insert(0, 1, '\'');
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

UsageStoreViews UsageStoreViews::Committed(state::TaskState& task) {
  return {task.committed_key_value_store(kAggregatesStore),
          task.committed_key_value_store(kTotalsStore), task.committed_key_value_store(kOrgsStore),
          task.committed_key_value_store(kAlertsStore),
          task.committed_key_value_store(kCommandResultsStore)};
}

UsageStoreViews UsageStoreViews::Live(state::TaskState& task) {
  return {task.key_value_store(kAggregatesStore), task.key_value_store(kTotalsStore),
          task.key_value_store(kOrgsStore), task.key_value_store(kAlertsStore),
          task.key_value_store(kCommandResultsStore)};
}

Result<AggregationQuery> ParseAggregationQuery(const std::map<std::string, std::string>& params) {
  json j = json::object();
  for (const auto& [k, v] : params) j[k] = v;
  return ParseAggregationQuery(j);
}

Result<QuotaCheckQuery> ParseQuotaCheckQuery(const std::map<std::string, std::string>& params) {
  QuotaCheckQuery q;
  auto metric = params.find("metricType");
  if (metric == params.end() || metric->second.empty()) return Bad("metricType is required");
  q.metric_type = metric->second;
  if (auto a = params.find("amount"); a != params.end()) {
    // Plain decimal only: std::stod would also take "0x10", " 5" and "inf".
    const std::string& text = a->second;
    auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), q.amount,
                                      std::chars_format::general);
    if (err != std::errc() || end != text.data() + text.size() || !std::isfinite(q.amount) ||
        q.amount < 0)
      return Bad("amount must be a finite decimal number >= 0");
  }
  return q;
}

Result<ReportQuery> ParseReportQuery(const std::map<std::string, std::string>& params) {
  auto field = [&](const char* name) -> Result<int64_t> {
    auto it = params.find(name);
    if (it == params.end() || it->second.empty()) return Bad(std::string(name) + " is required");
    auto t = ParseTimestampString(it->second);
    if (!t.ok()) return Bad(std::string(name) + ": " + t.status().message());
    return *t;
  };
  ReportQuery q;
  auto start = field("periodStart");
  if (!start.ok()) return start.status();
  auto end = field("periodEnd");
  if (!end.ok()) return end.status();
  q.period_start = *start;
  q.period_end = *end;
  auto format = params.find("format");
  if (format != params.end() && format->second != "json" && format->second != "csv")
    return Bad("format must be json or csv");
  q.csv = format != params.end() && format->second == "csv";
  return q;
}

Result<AggregationQuery> ParseAggregationQuery(const json& j) {
  if (!j.is_object()) return Bad("query must be an object");
  AggregationQuery q;
  for (const char* f : {"startTime", "endTime"}) {
    if (!j.contains(f)) return Bad(std::string(f) + " is required");
    auto t = ParseTimestamp(j[f]);
    if (!t.ok()) return Bad(std::string(f) + ": " + t.status().message());
    (std::string(f) == "startTime" ? q.start_time : q.end_time) = *t;
  }
  if (!j.contains("granularity") || !j["granularity"].is_string()) {
    return Bad("granularity is required: minute, hour, day or month");
  }
  auto g = ParseGranularity(j["granularity"].get<std::string>());
  if (!g)
    return Bad("granularity '" + j["granularity"].get<std::string>() +
               "' is not minute, hour, day or month");
  q.granularity = *g;
  auto list = [&j](const char* f, std::vector<std::string>& out) -> Status {
    if (!j.contains(f) || j[f].is_null()) return Status::OK();
    if (j[f].is_string()) {
      out = SplitList(j[f].get<std::string>());
      return Status::OK();
    }
    if (!j[f].is_array()) return Bad(std::string(f) + " must be a list");
    for (const auto& e : j[f]) {
      if (!e.is_string()) return Bad(std::string(f) + " must be a list of strings");
      out.push_back(e.get<std::string>());
    }
    return Status::OK();
  };
  if (auto s = list("metricTypes", q.metric_types); !s.ok()) return s;
  if (auto s = list("dimensions", q.dimensions); !s.ok()) return s;
  return q;
}

Result<json> UsageQueries::GetAggregatedMetrics(const std::string& org,
                                                const AggregationQuery& q) const {
  if (org.empty()) return Bad("organizationId is required");
  const Catalog& c = options_.catalog;
  const Granularity g = q.granularity;
  if (q.end_time <= q.start_time) return Bad("endTime must be after startTime");
  for (auto [t, name] : {std::pair{q.start_time, "startTime"}, std::pair{q.end_time, "endTime"}}) {
    if (!IsAligned(g, t)) {
      return Bad(std::string(name) + " " + FormatTimestamp(t) + " is not on a " +
                 GranularityName(g) +
                 " boundary (UTC); the range is [startTime, endTime) in whole buckets");
    }
  }
  const int64_t max_buckets = options_.limits.max_query_buckets;
  const int64_t approx = g == Granularity::kMonth ? (q.end_time - q.start_time) / (28 * kDayMs)
                                                  : (q.end_time - q.start_time) / (BucketEnd(g, 0));
  if (approx > max_buckets)
    return Bad("the range spans more than " + std::to_string(max_buckets) +
               " buckets; use a coarser granularity");
  std::vector<const MetricDefinition*> metrics;
  if (q.metric_types.empty()) {
    for (const auto& m : c.metrics) metrics.push_back(&m);
  }
  for (const auto& name : q.metric_types) {
    const MetricDefinition* m = c.FindMetric(name);
    if (!m) return Bad("unknown metricType '" + name + "'");
    if (std::find(metrics.begin(), metrics.end(), m) == metrics.end()) metrics.push_back(m);
  }
  std::vector<std::string> dims = q.dimensions;
  std::sort(dims.begin(), dims.end());
  dims.erase(std::unique(dims.begin(), dims.end()), dims.end());
  for (const auto* m : metrics) {
    for (const auto& d : dims) {
      if (!m->AllowsDimension(d)) {
        std::string allowed = keys::Dimset(m->group_by);
        return Bad("metric " + m->metric_type + " cannot be grouped by '" + d +
                   "' (allowed: " + (allowed.empty() ? "none" : allowed) + ")");
      }
    }
  }
  const OrgSettings settings = OrgSettings::Load(*stores_.orgs, org);
  json points = json::array();
  json totals = json::object();
  json rolled = json::object();
  struct Point {
    int64_t ts;
    size_t metric;
    DimValues values;
    json value;
  };
  std::vector<Point> collected;
  for (size_t mi = 0; mi < metrics.size(); ++mi) {
    const MetricDefinition& m = *metrics[mi];
    AggregateReader reader(*stores_.aggregates, org, m, settings);
    Aggregate total;
    reader.Scan(g, dims, q.start_time, q.end_time,
                [&](int64_t bucket, const DimValues& v, const Aggregate& a) {
                  collected.push_back({bucket, mi, v, NumberJson(a.Value(m.aggregation))});
                  if (dims.empty()) total.Merge(m.aggregation, a);
                });
    if (!dims.empty()) {
      reader.Scan(
          g, {}, q.start_time, q.end_time,
          [&](int64_t, const DimValues&, const Aggregate& a) { total.Merge(m.aggregation, a); });
    }
    totals[m.metric_type] = NumberJson(total.Value(m.aggregation));
    const int64_t w = settings.RolledUpBefore(m.metric_type, g);
    if (BucketEnd(g, q.start_time) <= w) rolled[m.metric_type] = FormatTimestamp(w);
  }
  std::stable_sort(collected.begin(), collected.end(), [](const Point& a, const Point& b) {
    if (a.ts != b.ts) return a.ts < b.ts;
    if (a.metric != b.metric) return a.metric < b.metric;
    return a.values < b.values;
  });
  for (const auto& p : collected) {
    points.push_back({{"timestamp", FormatTimestamp(p.ts)},
                      {"metricType", metrics[p.metric]->metric_type},
                      {"value", p.value},
                      {"dimensions", DimensionsJson(dims, p.values)}});
  }
  json mnames = json::array();
  for (const auto* m : metrics) mnames.push_back(m->metric_type);
  json out = {{"organizationId", org},
              {"startTime", FormatTimestamp(q.start_time)},
              {"endTime", FormatTimestamp(q.end_time)},
              {"granularity", GranularityName(g)},
              {"metricTypes", mnames},
              {"dimensions", dims},
              {"dataPoints", std::move(points)},
              {"totals", std::move(totals)}};
  if (!rolled.empty()) out["rolledUpBefore"] = rolled;
  return out;
}

Result<json> UsageQueries::GetQuotaStatus(const std::string& org, int64_t now) const {
  if (org.empty()) return Bad("organizationId is required");
  const Catalog& c = options_.catalog;
  const OrgSettings settings = OrgSettings::Load(*stores_.orgs, org);
  const std::string plan_name = settings.PlanAt(now, c);
  const Plan& plan = *c.FindPlan(plan_name);
  const Period period = settings.PeriodAt(now);
  json metrics = json::array();
  for (const auto& m : c.metrics) {
    const PlanMetric* pm = plan.Find(m.metric_type);
    if (!pm) continue;
    const bool lifetime = m.quota_scope == QuotaScope::kLifetime;
    auto total = ReadTotal(*stores_.totals, m,
                           lifetime ? keys::TotalLifetimeKey(org, m.metric_type)
                                    : keys::TotalPeriodKey(org, m.metric_type, period.start));
    const double used = total ? total->Value(m.aggregation) : 0.0;
    json entry = {{"metricType", m.metric_type},
                  {"used", NumberJson(used)},
                  {"unit", m.unit},
                  {"quotaScope", lifetime ? "lifetime" : "period"}};
    if (pm->limit) {
      const double limit = *pm->limit;
      const double pct = limit == 0 ? (used > 0 ? 100.0 : 0.0) : used * 100.0 / limit;
      entry["limit"] = NumberJson(limit);
      entry["remaining"] = NumberJson(std::max(0.0, limit - used));
      entry["percentage"] = Round2(std::clamp(pct, 0.0, 100.0));
      entry["exceeded"] = used > limit;
    } else {
      entry["limit"] = nullptr;
      entry["remaining"] = nullptr;
      entry["percentage"] = 0;
      entry["exceeded"] = false;
    }
    metrics.push_back(std::move(entry));
  }
  return json{{"organizationId", org},
              {"plan", plan_name},
              {"periodStart", FormatTimestamp(period.start)},
              {"periodEnd", FormatTimestamp(period.end)},
              {"billingAnchorDay", settings.billing_anchor_day},
              {"metrics", std::move(metrics)}};
}

Result<json> UsageQueries::CheckQuota(const std::string& org, const std::string& metric_type,
                                      double amount, int64_t now) const {
  if (org.empty()) return Bad("organizationId is required");
  const Catalog& c = options_.catalog;
  const MetricDefinition* m = c.FindMetric(metric_type);
  if (!m) return Bad("unknown metricType '" + metric_type + "'");
  if (!std::isfinite(amount) || amount < 0) return Bad("amount must be a finite number >= 0");
  const OrgSettings settings = OrgSettings::Load(*stores_.orgs, org);
  const std::string plan_name = settings.PlanAt(now, c);
  const PlanMetric* pm = c.FindPlan(plan_name)->Find(metric_type);
  const bool lifetime = m->quota_scope == QuotaScope::kLifetime;
  auto total =
      ReadTotal(*stores_.totals, *m,
                lifetime ? keys::TotalLifetimeKey(org, metric_type)
                         : keys::TotalPeriodKey(org, metric_type, settings.PeriodAt(now).start));
  const double used = total ? total->Value(m->aggregation) : 0.0;
  json out = {{"organizationId", org},
              {"metricType", metric_type},
              {"plan", plan_name},
              {"used", NumberJson(used)},
              {"amount", NumberJson(amount)}};
  if (!pm || !pm->limit) {
    out["allowed"] = true;
    out["remaining"] = nullptr;
    out["limit"] = nullptr;
    return out;
  }
  const double limit = *pm->limit;
  // Exact comparison in nano-units, so "exactly at the limit" is allowed regardless of floats.
  // An amount over the limit on its own is refused first: nano-units hold only |x| < 9.2e18,
  // and 1e19 converted would wrap and be allowed.
  out["allowed"] = amount <= limit && ToNanos(used) + ToNanos(amount) <= ToNanos(limit);
  out["remaining"] = NumberJson(std::max(0.0, limit - used));
  out["limit"] = NumberJson(limit);
  return out;
}

Result<json> UsageQueries::GenerateUsageReport(const std::string& org, int64_t period_start,
                                               int64_t period_end, int64_t now) const {
  if (org.empty()) return Bad("organizationId is required");
  if (period_end <= period_start) return Bad("periodEnd must be after periodStart");
  if (!IsAligned(Granularity::kMinute, period_start) ||
      !IsAligned(Granularity::kMinute, period_end)) {
    return Bad("periodStart and periodEnd must be whole minutes");
  }
  if (period_end - period_start > options_.limits.max_report_range_ms)
    return Bad("a report covers at most " + DurationText(options_.limits.max_report_range_ms));
  const Catalog& c = options_.catalog;
  const OrgSettings settings = OrgSettings::Load(*stores_.orgs, org);
  const std::string plan_name = settings.PlanAt(period_end - 1, c);
  const Plan& plan = *c.FindPlan(plan_name);
  json summary_metrics = json::object();
  json items = json::array();
  int64_t usage_cents = 0;
  for (const auto& m : c.metrics) {
    const bool lifetime = m.quota_scope == QuotaScope::kLifetime;
    AggregateReader reader(*stores_.aggregates, org, m, settings);
    auto total = reader.Total({}, lifetime ? kMinTimeMs : period_start, period_end);
    if (!total.ok()) return total.status();
    const Aggregate agg = total->empty() ? Aggregate{} : total->begin()->second;
    const double quantity = agg.Value(m.aggregation);
    summary_metrics[m.metric_type] = {{"quantity", NumberJson(quantity)},
                                      {"unit", m.unit},
                                      {"aggregation", AggregationName(m.aggregation)},
                                      {"quotaScope", lifetime ? "lifetime" : "period"},
                                      {"events", agg.events}};
    const PlanMetric* pm = plan.Find(m.metric_type);
    if (!pm) continue;
    const Nanos qn = QuantityNanos(m, agg);
    Nanos overage = 0;
    if (pm->included) overage = std::max<Nanos>(0, qn - ToNanos(*pm->included));
    // nano-units x micro-currency / pricePer = 1e-15 currency; 1e13 of those make a cent.
    const int64_t cents = RoundToCents(overage * pm->unit_price_micros / pm->price_per,
                                       static_cast<Nanos>(10'000'000'000'000LL));
    usage_cents += cents;
    items.push_back({{"metricType", m.metric_type},
                     {"description", m.description},
                     {"unit", m.unit},
                     {"quantity", NumberJson(quantity)},
                     {"includedQuantity", pm->included ? NumberJson(*pm->included) : json(nullptr)},
                     {"overageQuantity", NumberJson(NanosToDouble(overage))},
                     {"limit", pm->limit ? NumberJson(*pm->limit) : json(nullptr)},
                     {"unitPrice", NumberJson(pm->unit_price)},
                     {"pricePer", pm->price_per},
                     {"amount", Money(cents)},
                     {"currency", plan.currency}});
  }
  const int64_t base_cents = RoundToCents(plan.base_price_micros, 10'000);
  const std::string report_id =
      "rpt_" +
      Hex16(Hash64(org + '\0' + std::to_string(period_start) + '\0' + std::to_string(period_end)));
  return json{{"reportId", report_id},
              {"organizationId", org},
              {"periodStart", FormatTimestamp(period_start)},
              {"periodEnd", FormatTimestamp(period_end)},
              {"plan", plan_name},
              {"currency", plan.currency},
              {"summary",
               {{"plan", plan_name},
                {"metrics", summary_metrics},
                {"basePrice", Money(base_cents)},
                {"usageCharges", Money(usage_cents)},
                {"totalAmount", Money(base_cents + usage_cents)},
                {"currency", plan.currency}}},
              {"lineItems", items},
              {"generatedAt", FormatTimestamp(now)}};
}

std::string UsageReportToCsv(const json& r) {
  std::ostringstream out;
  out << "reportId,organizationId,periodStart,periodEnd,plan,metricType,unit,quantity,"
         "includedQuantity,overageQuantity,unitPrice,pricePer,amount,currency\r\n";
  auto row = [&](const std::vector<json>& fields) {
    for (size_t i = 0; i < fields.size(); ++i) out << (i ? "," : "") << CsvField(fields[i]);
    out << "\r\n";
  };
  const json head[] = {r["reportId"], r["organizationId"], r["periodStart"], r["periodEnd"],
                       r["plan"]};
  for (const auto& li : r["lineItems"]) {
    row({head[0], head[1], head[2], head[3], head[4], li["metricType"], li["unit"], li["quantity"],
         li["includedQuantity"], li["overageQuantity"], li["unitPrice"], li["pricePer"],
         li["amount"], li["currency"]});
  }
  const json& s = r["summary"];
  row({head[0], head[1], head[2], head[3], head[4], "base_price", "", "", "", "", "", "",
       s["basePrice"], s["currency"]});
  row({head[0], head[1], head[2], head[3], head[4], "total", "", "", "", "", "", "",
       s["totalAmount"], s["currency"]});
  return out.str();
}

Result<std::string> UsageQueries::GenerateUsageReportCsv(const std::string& org,
                                                         int64_t period_start, int64_t period_end,
                                                         int64_t now) const {
  auto r = GenerateUsageReport(org, period_start, period_end, now);
  if (!r.ok()) return r.status();
  return UsageReportToCsv(*r);
}

Result<json> UsageQueries::GetDashboardData(const std::string& org, int64_t now) const {
  if (org.empty()) return Bad("organizationId is required");
  const Catalog& c = options_.catalog;
  const OrgSettings settings = OrgSettings::Load(*stores_.orgs, org);
  const Period period = settings.PeriodAt(now);
  auto quota = GetQuotaStatus(org, now);
  if (!quota.ok()) return quota.status();

  json current = json::object();
  for (const auto& m : c.metrics) {
    const bool lifetime = m.quota_scope == QuotaScope::kLifetime;
    auto total = ReadTotal(*stores_.totals, m,
                           lifetime ? keys::TotalLifetimeKey(org, m.metric_type)
                                    : keys::TotalPeriodKey(org, m.metric_type, period.start));
    current[m.metric_type] = NumberJson(total ? total->Value(m.aggregation) : 0.0);
  }

  // Trends in whole hours (whole days when hours are not kept for 61 days).
  const Granularity align =
      options_.retention.hour_ms >= 61 * kDayMs ? Granularity::kHour : Granularity::kDay;
  const int64_t edge = BucketEnd(align, BucketStart(align, now));
  auto figure = [&](const MetricDefinition& m, int64_t from, int64_t to) -> std::optional<double> {
    AggregateReader reader(*stores_.aggregates, org, m, settings);
    auto t = reader.Total({}, std::max<int64_t>(from, kMinTimeMs), to);
    if (!t.ok()) return std::nullopt;
    return t->empty() ? 0.0 : t->begin()->second.Value(m.aggregation);
  };
  auto trend = [&](int64_t span) {
    json out = json::object();
    for (const auto& m : c.metrics) {
      auto cur = figure(m, edge - span, edge);
      auto prev = figure(m, edge - 2 * span, edge - span);
      json t = {{"current", cur ? NumberJson(*cur) : json(nullptr)},
                {"previous", prev ? NumberJson(*prev) : json(nullptr)}};
      if (cur && prev) {
        t["change"] = NumberJson(*cur - *prev);
        t["changePercent"] =
            *prev == 0 ? json(nullptr) : json(Round2((*cur - *prev) * 100.0 / *prev));
      }
      out[m.metric_type] = t;
    }
    return out;
  };
  json trends = {{"weekOverWeek", trend(7 * kDayMs)},
                 {"monthOverMonth", trend(30 * kDayMs)},
                 {"windowEnd", FormatTimestamp(edge)}};

  auto top = [&](const std::string& metric, const char* dim, int64_t from, int64_t to) {
    json list = json::array();
    const MetricDefinition* m = c.FindMetric(metric);
    if (!m || !m->AllowsDimension(dim)) return list;
    AggregateReader reader(*stores_.aggregates, org, *m, settings);
    auto t = reader.Total({dim}, from, to);
    if (!t.ok()) return list;
    std::vector<std::pair<double, std::string>> ranked;
    for (const auto& [values, agg] : *t) {
      if (values.empty() || !values[0]) continue;
      ranked.emplace_back(agg.Value(m->aggregation), *values[0]);
    }
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (size_t i = 0; i < ranked.size() && i < static_cast<size_t>(c.dashboard.top_n); ++i) {
      list.push_back({{dim, ranked[i].second},
                      {"metricType", metric},
                      {"value", NumberJson(ranked[i].first)}});
    }
    return list;
  };
  json top_users = top(c.dashboard.top_users_metric, "userId", period.start, period.end);
  json top_docs = top(c.dashboard.top_documents_metric, "resourceId", period.start, period.end);

  const int64_t rt_end = BucketEnd(Granularity::kMinute, BucketStart(Granularity::kMinute, now));
  const int64_t rt_start = rt_end - 5 * kMinuteMs;
  json realtime = {{"windowStart", FormatTimestamp(rt_start)},
                   {"windowEnd", FormatTimestamp(rt_end)},
                   {"asOf", FormatTimestamp(now)}};
  if (const MetricDefinition* m = c.FindMetric(c.dashboard.active_users_metric)) {
    auto v = figure(*m, rt_start, rt_end);
    realtime["activeUsers"] = v ? NumberJson(*v) : json(nullptr);
  }
  if (const MetricDefinition* m = c.FindMetric(c.dashboard.open_documents_metric);
      m && m->AllowsDimension("resourceId")) {
    AggregateReader reader(*stores_.aggregates, org, *m, settings);
    auto t = reader.Total({"resourceId"}, rt_start, rt_end);
    if (t.ok()) {
      int64_t open = 0;
      for (const auto& [values, agg] : *t) open += (!values.empty() && values[0]) ? 1 : 0;
      realtime["openDocuments"] = open;
    } else {
      realtime["openDocuments"] = nullptr;
    }
  }
  if (const MetricDefinition* m = c.FindMetric(c.dashboard.top_users_metric)) {
    auto v = figure(*m, rt_start, rt_end);
    realtime["events"] = v ? NumberJson(*v) : json(nullptr);
  }
  return json{{"organizationId", org},
              {"generatedAt", FormatTimestamp(now)},
              {"currentPeriod",
               {{"periodStart", FormatTimestamp(period.start)},
                {"periodEnd", FormatTimestamp(period.end)},
                {"plan", (*quota)["plan"]},
                {"usage", current},
                {"quota", (*quota)["metrics"]}}},
              {"trends", trends},
              {"topUsers", top_users},
              {"topDocuments", top_docs},
              {"realtime", realtime}};
}

Result<json> UsageQueries::ListAlertSubscriptions(const std::string& org) const {
  if (org.empty()) return Bad("organizationId is required");
  json subs = json::array();
  stores_.alerts->PrefixScan(keys::AlertSubscriptionPrefix(org),
                             [&](std::string_view, std::string_view v) {
                               json s = json::parse(v, nullptr, false);
                               if (!s.is_discarded()) subs.push_back(std::move(s));
                               return true;
                             });
  return json{{"organizationId", org}, {"subscriptions", subs}};
}

}  // namespace cm::usage
