#include "processors/usage/usage_processor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "processors/usage/aggregate_reader.h"
#include "processors/usage/usage_commands.h"
#include "processors/usage/usage_stores.h"
#include "state/key_codec.h"
#include "topology/common/json.h"

namespace cm::usage {

using nlohmann::json;
using topology::Record;

namespace {

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

double Round2(double v) { return std::round(v * 100.0) / 100.0; }

}  // namespace

std::string SubscriptionIdFor(const std::string& org, const std::string& metric,
                              const std::vector<double>& thresholds,
                              const std::vector<std::string>& channels) {
  std::string material = org + '\0' + metric + '\0';
  for (double t : thresholds) material += std::to_string(std::llround(t * 1000)) + ',';
  material.push_back('\0');
  for (const auto& c : channels) material += c + ',';
  return "qas_" + Hex16(Hash64(material));
}

std::string AlertIdFor(const std::string& subscription_id, double threshold, int64_t period_start) {
  return "qa_" +
         Hex16(Hash64(subscription_id + '\0' + std::to_string(std::llround(threshold * 1000)) +
                      '\0' + std::to_string(period_start)));
}

UsageProcessor::UsageProcessor(std::shared_ptr<const UsageOptions> options)
    : options_(std::move(options)) {}

void UsageProcessor::Init(topology::ProcessorContext& context) {
  context_ = &context;
  aggregates_ = &context.GetKeyValueStore(kAggregatesStore);
  totals_ = &context.GetKeyValueStore(kTotalsStore);
  orgs_ = &context.GetKeyValueStore(kOrgsStore);
  alerts_ = &context.GetKeyValueStore(kAlertsStore);
  dedup_ = &context.GetKeyValueStore(kDedupStore);
  results_.emplace(context.GetKeyValueStore(kCommandResultsStore));
  context.Schedule(std::chrono::milliseconds(options_->maintenance_interval_ms),
                   topology::PunctuationType::kStreamTime,
                   [this](int64_t stream_time) { Maintain(stream_time); });
}

void UsageProcessor::Process(const Record& record) {
  if (record.topic == options_->commands_topic) {
    ProcessCommand(record);
  } else {
    ProcessEvent(record);
  }
}

// --- events --------------------------------------------------------------------------------

void UsageProcessor::ProcessEvent(const Record& record) {
  const UsageOptions& o = *options_;
  auto parsed_json = topology::ParseJson(record.value, o.limits.max_json_depth);
  if (!parsed_json.ok()) {
    context_->SendToDlq(record, "event is " + parsed_json.status().message());
    return;
  }
  if (record.value.size() > o.limits.max_event_bytes) {
    context_->SendToDlq(
        record, "event is larger than " + std::to_string(o.limits.max_event_bytes) + " bytes");
    return;
  }
  const json& raw = *parsed_json;
  // "Now" for the age bounds is the record's Kafka timestamp, never the wall clock.
  auto parsed =
      ParseUsageEvent(raw, record.timestamp_ms, &o.catalog, o.event_time_bounds, o.limits);
  if (!parsed.ok()) {
    context_->SendToDlq(record, "invalid usage event: " + parsed.status().message());
    return;
  }
  UsageEvent& e = parsed.value();
  if (e.organization_id != record.key) {
    context_->SendToDlq(record, "organizationId '" + e.organization_id +
                                    "' does not match the record key '" + record.key +
                                    "' (events must be keyed by organizationId)");
    return;
  }
  // Dedup by eventId, in the same commit (one WriteBatch) as the aggregate updates below.
  const std::string dkey = keys::DedupKey(e.organization_id, e.event_id);
  const uint64_t content = Hash64(raw.dump());
  if (auto seen = dedup_->Get(dkey)) {
    if (seen->size() < 16 || state::ReadUint64(std::string_view(*seen).substr(8)) != content) {
      context_->SendToDlq(record, "eventId '" + e.event_id +
                                      "' was already recorded with different content; the first "
                                      "version counts");
    }
    return;  // a duplicate or redelivery changes nothing
  }
  std::string seen_value;
  state::AppendUint64(seen_value, static_cast<uint64_t>(e.timestamp_ms));
  state::AppendUint64(seen_value, content);
  dedup_->Put(dkey, seen_value);
  dedup_->Put(keys::DedupExpiryKey(e.timestamp_ms, e.organization_id, e.event_id), "");

  const std::string& org = e.organization_id;
  OrgSettings settings = OrgSettings::Load(*orgs_, org);
  bool plan_changed = false;
  if (e.event_type == kSubscriptionChangedEvent) {
    std::string plan =
        e.TextProperty("metadata.plan").value_or(e.TextProperty("metadata.newPlan").value_or(""));
    settings.AddPlanChange(plan, e.timestamp_ms);
    plan_changed = true;
    bool anchor_changed = false;
    if (e.metadata.contains("billingAnchorDay")) {
      int anchor = e.metadata["billingAnchorDay"].get<int>();
      anchor_changed = anchor != settings.billing_anchor_day;
      settings.billing_anchor_day = anchor;
    }
    settings.Save(*orgs_, org);
    if (anchor_changed) RebuildPeriodTotals(org, settings, record.timestamp_ms);
  }
  std::set<std::string> affected;
  CountEvent(e, settings, affected);
  const json trigger = {{"kind", "event"}, {"eventId", e.event_id}, {"eventType", e.event_type}};
  if (plan_changed) {
    CheckAllAlerts(org, settings, record.timestamp_ms, trigger);
    return;
  }
  const std::set<std::string, std::less<>> subscribed = SubscribedMetrics(org);
  for (const auto& metric : affected) {
    if (!subscribed.contains(metric)) continue;
    CheckAlerts(org, settings, *o.catalog.FindMetric(metric), e.timestamp_ms, record.timestamp_ms,
                trigger);
  }
}

std::set<std::string, std::less<>> UsageProcessor::SubscribedMetrics(const std::string& org) {
  std::set<std::string, std::less<>> metrics;
  const std::string key = keys::AlertMetricsKey(org);
  if (auto index = alerts_->Get(key)) {
    size_t pos = 0;
    std::string metric;
    while (state::ReadLengthPrefixed(*index, pos, metric)) metrics.insert(std::move(metric));
    return metrics;
  }
  // Not indexed yet (an organization first seen, or subscribed before the index existed).
  const std::string prefix = keys::AlertSubscriptionPrefix(org);
  alerts_->PrefixScan(prefix, [&](std::string_view k, std::string_view) {
    size_t pos = prefix.size();
    std::string metric;
    if (state::ReadLengthPrefixed(k, pos, metric)) metrics.insert(std::move(metric));
    return true;
  });
  SaveSubscribedMetrics(org, metrics);
  return metrics;
}

void UsageProcessor::SaveSubscribedMetrics(const std::string& org,
                                           const std::set<std::string, std::less<>>& metrics) {
  std::string index;
  for (const auto& metric : metrics) state::AppendLengthPrefixed(index, metric);
  alerts_->Put(keys::AlertMetricsKey(org), index);
}

namespace {

// One event's contribution to the aggregates of one metric.
struct Contribution {
  Aggregation kind = Aggregation::kCount;
  double number = 0;  // sum, max, latest
  std::string text;   // unique_count
};

// Reads every key in one MultiGet, adds its contribution and writes it back. The keys of one
// event are distinct (they differ in metric, granularity, dimension set or period), so each is
// read once and written once.
void AddContributions(state::KeyValueStore& store, const std::vector<std::string>& keys,
                      const std::vector<size_t>& contribution_of,
                      const std::vector<Contribution>& contributions, const UsageEvent& e) {
  const std::vector<std::optional<std::string>> values = store.MultiGet(keys);
  for (size_t i = 0; i < keys.size(); ++i) {
    const Contribution& c = contributions[contribution_of[i]];
    Aggregate agg;
    if (values[i]) {
      if (auto decoded = Aggregate::Decode(c.kind, *values[i])) agg = std::move(*decoded);
    }
    agg.AddEvent(c.kind, c.number, c.text, e.timestamp_ms, e.event_id);
    store.Put(keys[i], agg.Encode(c.kind));
  }
}

}  // namespace

void UsageProcessor::CountEvent(const UsageEvent& e, const OrgSettings& settings,
                                std::set<std::string>& affected) {
  const std::string& org = e.organization_id;
  // Every key the event updates is gathered first, so that each store reads them in one
  // MultiGet: most are not cached (a new minute bucket, a new dimension group), and a batched
  // lookup costs less than a walk of the task's memtable and files per key.
  std::vector<Contribution> contributions;
  std::vector<std::string> aggregate_keys, total_keys;
  std::vector<size_t> aggregate_of, total_of;
  for (const auto& m : options_->catalog.metrics) {
    if (!m.Matches(e)) continue;
    Contribution c{m.aggregation, 0, ""};
    if (m.aggregation == Aggregation::kUniqueCount) {
      auto t = e.TextProperty(m.value_property);
      if (!t) continue;  // onMissingValue: skip (reject was enforced by validation)
      c.text = *t;
    } else if (m.aggregation != Aggregation::kCount) {
      auto n = e.NumberProperty(m.value_property);
      if (!n) continue;
      c.number = m.Negates(e.event_type) ? -*n : *n;
    }
    const size_t index = contributions.size();
    contributions.push_back(std::move(c));
    DimValues values;
    for (const auto& d : m.group_by) values.push_back(e.TextProperty(d));
    for (Granularity g : kGranularities) {
      const int64_t bucket = BucketStart(g, e.timestamp_ms);
      // A bucket that was rolled up stays dropped; the event counts in the coarser ones.
      if (BucketEnd(g, bucket) <= settings.RolledUpBefore(m.metric_type, g)) continue;
      // Two series per granularity: ungrouped, and by every dimension the metric allows.
      // Group-bys on fewer dimensions project the second at query time; materializing each
      // subset too would multiply the writes (and changelog records) per event.
      aggregate_keys.push_back(keys::AggregateKey(org, m.metric_type, g, "", bucket, {}));
      aggregate_of.push_back(index);
      if (!m.group_by.empty()) {
        aggregate_keys.push_back(
            keys::AggregateKey(org, m.metric_type, g, keys::Dimset(m.group_by), bucket, values));
        aggregate_of.push_back(index);
      }
    }
    // Running totals for quota: the billing period of the event time, and all time.
    total_keys.push_back(
        keys::TotalPeriodKey(org, m.metric_type, settings.PeriodAt(e.timestamp_ms).start));
    total_keys.push_back(keys::TotalLifetimeKey(org, m.metric_type));
    total_of.insert(total_of.end(), 2, index);
    affected.insert(m.metric_type);
  }
  AddContributions(*aggregates_, aggregate_keys, aggregate_of, contributions, e);
  AddContributions(*totals_, total_keys, total_of, contributions, e);
}

void UsageProcessor::RebuildPeriodTotals(const std::string& org, const OrgSettings& settings,
                                         int64_t now) {
  // The periods an accepted event can still fall into: from 35 days (+1) back to 5 minutes ahead.
  const int64_t from = now - options_->event_time_bounds.max_age_ms - kDayMs;
  const int64_t to = now + options_->event_time_bounds.max_future_ms;
  for (const auto& m : options_->catalog.metrics) {
    std::vector<std::string> stale;
    totals_->PrefixScan(keys::TotalsPeriodPrefix(org, m.metric_type),
                        [&](std::string_view k, std::string_view) {
                          stale.emplace_back(k);
                          return true;
                        });
    for (const auto& k : stale) totals_->Delete(k);
    AggregateReader reader(*aggregates_, org, m, settings);
    for (Period p = settings.PeriodAt(std::max<int64_t>(from, 0)); p.start <= to;
         p = settings.PeriodAt(p.end)) {
      auto total = reader.Total({}, p.start, p.end);
      if (!total.ok() || total->empty()) continue;
      totals_->Put(keys::TotalPeriodKey(org, m.metric_type, p.start),
                   total->begin()->second.Encode(m.aggregation));
    }
  }
}

// --- alerts --------------------------------------------------------------------------------

void UsageProcessor::CheckAlerts(const std::string& org, const OrgSettings& settings,
                                 const MetricDefinition& m, int64_t usage_time, int64_t now,
                                 const json& trigger) {
  std::vector<json> subs;
  alerts_->PrefixScan(keys::AlertSubscriptionMetricPrefix(org, m.metric_type),
                      [&](std::string_view, std::string_view v) {
                        json s = json::parse(v, nullptr, false);
                        if (!s.is_discarded()) subs.push_back(std::move(s));
                        return true;
                      });
  if (subs.empty()) return;
  const bool lifetime = m.quota_scope == QuotaScope::kLifetime;
  const Period period = settings.PeriodAt(lifetime ? now : usage_time);
  const std::string plan_name = settings.PlanAt(std::min(now, period.end - 1), options_->catalog);
  const Plan* plan = options_->catalog.FindPlan(plan_name);
  const PlanMetric* pm = plan ? plan->Find(m.metric_type) : nullptr;
  if (pm == nullptr || !pm->limit) return;  // unlimited: nothing to cross
  const double limit = *pm->limit;
  double used = 0;
  const std::string tkey = lifetime ? keys::TotalLifetimeKey(org, m.metric_type)
                                    : keys::TotalPeriodKey(org, m.metric_type, period.start);
  if (auto v = totals_->Get(tkey)) {
    if (auto a = Aggregate::Decode(m.aggregation, *v)) used = a->Value(m.aggregation);
  }
  for (const auto& sub : subs) {
    const std::string sub_id = sub.value("subscriptionId", "");
    for (const auto& tj : sub.value("thresholds", json::array())) {
      const double t = tj.get<double>();
      const bool reached = limit == 0 ? used > 0 : used * 100.0 >= t * limit;
      if (!reached) continue;
      const std::string fired_key = keys::AlertFiredKey(org, sub_id, t, period.start);
      if (alerts_->Get(fired_key)) continue;  // once per subscription, threshold and period
      const std::string alert_id = AlertIdFor(sub_id, t, period.start);
      alerts_->Put(fired_key, alert_id);
      json alert = {{"type", "quota.threshold_crossed"},
                    {"eventType", "quota.threshold_crossed"},
                    {"eventId", alert_id},
                    {"alertId", alert_id},
                    {"organizationId", org},
                    {"subscriptionId", sub_id},
                    {"metricType", m.metric_type},
                    {"threshold", NumberJson(t)},
                    {"used", NumberJson(used)},
                    {"limit", NumberJson(limit)},
                    {"percentage", limit == 0 ? 100.0 : Round2(used * 100.0 / limit)},
                    {"plan", plan_name},
                    {"quotaScope", lifetime ? "lifetime" : "period"},
                    {"periodStart", FormatTimestamp(period.start)},
                    {"periodEnd", FormatTimestamp(period.end)},
                    {"notificationChannels", sub.value("notificationChannels", json::array())},
                    {"occurredAt", FormatTimestamp(now)},
                    {"triggeredBy", trigger}};
      Record out;
      out.key = org;
      out.value = alert.dump();
      out.timestamp_ms = now;
      out.headers = {{"content-type", "application/json"}, {"ce_type", "quota.threshold_crossed"}};
      context_->ForwardTo(kQuotaAlertsSinkNode, out);
    }
  }
}

void UsageProcessor::CheckAllAlerts(const std::string& org, const OrgSettings& settings,
                                    int64_t now, const json& trigger) {
  for (const auto& m : options_->catalog.metrics) CheckAlerts(org, settings, m, now, now, trigger);
}

// --- commands ------------------------------------------------------------------------------

void UsageProcessor::ProcessCommand(const Record& record) {
  const UsageLimits& limits = options_->limits;
  auto parsed_json = topology::ParseJson(record.value, limits.max_json_depth);
  if (!parsed_json.ok() || !parsed_json->is_object()) {
    context_->SendToDlq(record,
                        "command is not a JSON object" +
                            (parsed_json.ok() ? "" : ": " + parsed_json.status().message()));
    return;
  }
  json cmd = std::move(parsed_json).value();
  const json type = cmd.value("type", json());
  if (!type.is_string()) {
    context_->SendToDlq(record, "command has no type");
    return;
  }
  const std::string t = type.get<std::string>();
  if (t.rfind("usage.", 0) != 0) return;  // another application's command
  const json id = cmd.value("commandId", json());
  if (!id.is_string() || id.get_ref<const std::string&>().empty() ||
      id.get_ref<const std::string&>().size() > limits.max_id_bytes) {
    context_->SendToDlq(record, "usage command needs a commandId (a string of 1.." +
                                    std::to_string(limits.max_id_bytes) + " bytes)");
    return;
  }
  const std::string command_id = id.get<std::string>();
  if (results_->Applied(command_id)) return;  // applied before: a retry changes nothing
  const int64_t now = record.timestamp_ms;

  std::string org;
  CommandOutcome outcome;
  const json org_json = cmd.value("organizationId", json());
  if (!org_json.is_null() &&
      (!org_json.is_string() || org_json.get_ref<const std::string&>().empty())) {
    outcome = {400, ErrorBody("validation_error", "organizationId must be a non-empty string", {})};
  } else {
    if (org_json.is_string()) org = org_json.get<std::string>();
    if (!org.empty() && org != record.key) {
      outcome = {400, ErrorBody("validation_error", "organizationId does not match the record key",
                                {{"organizationId", org}, {"key", record.key}})};
    } else if (org.empty() && t != kRollupCommand) {
      outcome = {400, ErrorBody("validation_error", "organizationId is required", {})};
    } else if (t == kSetPlanCommand) {
      outcome = SetPlan(org, cmd, now);
    } else if (t == kSubscribeAlertsCommand) {
      outcome = SubscribeAlerts(org, cmd, now);
    } else if (t == kRollupCommand) {
      outcome = Rollup(org, cmd, now);
    } else {
      outcome = {
          400,
          ErrorBody("validation_error", "unknown usage command type '" + t + "'",
                    {{"knownTypes", {kSetPlanCommand, kSubscribeAlertsCommand, kRollupCommand}}})};
    }
  }
  std::optional<std::string> request_hash;
  // What the HTTP edge compares a retry's request with (a reused Idempotency-Key).
  if (cmd.contains("requestHash") && cmd["requestHash"].is_string())
    request_hash = cmd["requestHash"].get<std::string>();
  results_->Record({command_id, t, org, outcome.status, outcome.body, request_hash, now});
}

UsageProcessor::CommandOutcome UsageProcessor::SetPlan(const std::string& org, const json& cmd,
                                                       int64_t now) {
  const Catalog& c = options_->catalog;
  if (auto error = CheckSetPlan(c, cmd)) return {400, std::move(*error)};
  const json plan = cmd["plan"];
  OrgSettings settings = OrgSettings::Load(*orgs_, org);
  const int anchor = cmd.contains("billingAnchorDay") ? cmd["billingAnchorDay"].get<int>()
                                                      : settings.billing_anchor_day;
  const std::string previous = settings.PlanAt(now, c);
  settings.AddPlanChange(plan.get<std::string>(), now);
  const bool anchor_changed = anchor != settings.billing_anchor_day;
  settings.billing_anchor_day = anchor;
  settings.Save(*orgs_, org);
  if (anchor_changed) RebuildPeriodTotals(org, settings, now);
  CheckAllAlerts(org, settings, now, {{"kind", "command"}, {"commandId", cmd["commandId"]}});
  const Period p = settings.PeriodAt(now);
  return {200,
          {{"organizationId", org},
           {"plan", plan},
           {"previousPlan", previous},
           {"billingAnchorDay", anchor},
           {"effectiveFrom", FormatTimestamp(now)},
           {"periodStart", FormatTimestamp(p.start)},
           {"periodEnd", FormatTimestamp(p.end)}}};
}

UsageProcessor::CommandOutcome UsageProcessor::SubscribeAlerts(const std::string& org,
                                                               const json& cmd, int64_t now) {
  const Catalog& c = options_->catalog;
  if (auto error = CheckSubscribeAlerts(c, cmd)) return {400, std::move(*error)};
  const json metric = cmd["metricType"];
  std::vector<double> thresholds;
  json tj = cmd.contains("thresholds") ? cmd["thresholds"] : json::array();
  if (cmd.contains("threshold")) tj.push_back(cmd["threshold"]);
  for (const auto& t : tj) thresholds.push_back(std::round(t.get<double>() * 1000) / 1000);
  std::sort(thresholds.begin(), thresholds.end());
  thresholds.erase(std::unique(thresholds.begin(), thresholds.end()), thresholds.end());
  std::vector<std::string> channels;
  for (const auto& ch : cmd.value("notificationChannels", json::array({"in_app"})))
    channels.push_back(ch.get<std::string>());
  std::sort(channels.begin(), channels.end());
  channels.erase(std::unique(channels.begin(), channels.end()), channels.end());
  const std::string m = metric.get<std::string>();
  const std::string id = SubscriptionIdFor(org, m, thresholds, channels);
  const std::string key = keys::AlertSubscriptionKey(org, m, id);
  if (auto existing = alerts_->Get(key)) {
    json body = json::parse(*existing);
    body["created"] = false;
    return {200, body};
  }
  json sub = {{"subscriptionId", id},
              {"organizationId", org},
              {"metricType", m},
              {"thresholds", thresholds},
              {"notificationChannels", channels},
              {"createdAt", FormatTimestamp(now)}};
  alerts_->Put(key, sub.dump());
  auto metrics = SubscribedMetrics(org);
  if (metrics.insert(m).second) SaveSubscribedMetrics(org, metrics);
  OrgSettings settings = OrgSettings::Load(*orgs_, org);
  // Usage already past a threshold alerts at once (still once per period).
  CheckAlerts(org, settings, *c.FindMetric(m), now, now,
              {{"kind", "command"}, {"commandId", cmd["commandId"]}});
  sub["created"] = true;
  return {201, sub};
}

// --- rollup --------------------------------------------------------------------------------

std::vector<std::string> UsageProcessor::OrganizationsInTask() {
  std::vector<std::string> orgs;
  std::string begin;
  while (true) {
    std::optional<std::string> org;
    aggregates_->Range(begin, "", [&](std::string_view k, std::string_view) {
      org = keys::KeyOrg(k);
      return false;
    });
    if (!org) break;
    orgs.push_back(*org);
    begin = state::PrefixSuccessor(keys::AggregateOrgPrefix(*org));
    if (begin.empty()) break;
  }
  return orgs;
}

uint64_t UsageProcessor::RollupSeries(const std::string& org, const MetricDefinition& m,
                                      Granularity g, int64_t cutoff, OrgSettings& settings) {
  if (cutoff <= settings.RolledUpBefore(m.metric_type, g)) return 0;  // done before
  // Buckets with end <= cutoff: for fixed sizes, start < cutoff - size + 1.
  const int64_t limit = g == Granularity::kMonth ? cutoff : cutoff - (BucketEnd(g, 0) - 0) + 1;
  const std::string base = keys::AggregateGranularityPrefix(org, m.metric_type, g);
  const std::string base_end = state::PrefixSuccessor(base);
  std::string cursor = base;
  std::vector<std::string> doomed;
  while (true) {
    std::optional<keys::AggregateKeyParts> first;
    aggregates_->Range(cursor, base_end, [&](std::string_view k, std::string_view) {
      first = keys::ParseAggregateKey(k);
      return false;
    });
    if (!first) break;
    const std::string series = keys::AggregateSeriesPrefix(org, m.metric_type, g, first->dimset);
    std::string end = series;
    state::AppendOrderedInt64(end, limit);
    aggregates_->Range(series, end, [&](std::string_view k, std::string_view) {
      if (g == Granularity::kMonth) {
        auto p = keys::ParseAggregateKey(k);
        if (!p || BucketEnd(g, p->bucket_start) > cutoff) return true;
      }
      doomed.emplace_back(k);
      return true;
    });
    cursor = state::PrefixSuccessor(series);
  }
  for (const auto& k : doomed) aggregates_->Delete(k);
  settings.SetRolledUpBefore(m.metric_type, g, cutoff);
  return doomed.size();
}

UsageProcessor::CommandOutcome UsageProcessor::Rollup(const std::string& org, const json& cmd,
                                                      int64_t now) {
  const Catalog& c = options_->catalog;
  const json metric = cmd.value("metricType", json());
  std::vector<const MetricDefinition*> metrics;
  if (metric == "*") {
    for (const auto& m : c.metrics) metrics.push_back(&m);
  } else if (metric.is_string() && c.FindMetric(metric.get<std::string>())) {
    metrics.push_back(c.FindMetric(metric.get<std::string>()));
  } else {
    return {400, ErrorBody("validation_error", "metricType must name a catalog metric or be \"*\"",
                           {{"metricType", metric}, {"metricTypes", c.MetricTypes()}})};
  }
  if (!cmd.contains("cutoffTime"))
    return {400, ErrorBody("validation_error", "cutoffTime is required", {})};
  auto cutoff = ParseTimestamp(cmd["cutoffTime"]);
  if (!cutoff.ok()) {
    return {400, ErrorBody("validation_error", "cutoffTime: " + cutoff.status().message(), {})};
  }
  if (*cutoff > now) {
    return {400,
            ErrorBody("validation_error", "cutoffTime must not be in the future",
                      {{"cutoffTime", FormatTimestamp(*cutoff)}, {"now", FormatTimestamp(now)}})};
  }
  std::vector<Granularity> grans;
  if (cmd.contains("granularities")) {
    if (!cmd["granularities"].is_array()) {
      return {400, ErrorBody("validation_error", "granularities must be an array", {})};
    }
    for (const auto& gj : cmd["granularities"]) {
      auto g = gj.is_string() ? ParseGranularity(gj.get<std::string>()) : std::nullopt;
      if (!g || *g == Granularity::kMonth) {
        return {400, ErrorBody(
                         "validation_error",
                         "granularities may list minute, hour and day (months are never rolled up)",
                         {{"granularity", gj}})};
      }
      grans.push_back(*g);
    }
  } else {
    for (Granularity g : {Granularity::kMinute, Granularity::kHour, Granularity::kDay}) {
      if (options_->retention.For(g) != RetentionPolicy::kForever) grans.push_back(g);
    }
  }
  std::vector<std::string> orgs =
      org.empty() ? OrganizationsInTask() : std::vector<std::string>{org};
  RollupResult r;
  for (const auto& o : orgs) {
    OrgSettings settings = OrgSettings::Load(*orgs_, o);
    for (const auto* m : metrics) {
      for (Granularity g : grans) r.rolled_up += RollupSeries(o, *m, g, *cutoff, settings);
    }
    settings.Save(*orgs_, o);
    ++r.organizations;
  }
  json gnames = json::array();
  for (Granularity g : grans) gnames.push_back(GranularityName(g));
  json mnames = json::array();
  for (const auto* m : metrics) mnames.push_back(m->metric_type);
  return {200,
          {{"rolledUp", r.rolled_up},
           {"errors", r.errors},
           {"metricTypes", mnames},
           {"granularities", gnames},
           {"cutoffTime", FormatTimestamp(*cutoff)},
           {"organizations", r.organizations}}};
}

// --- maintenance (stream time) -------------------------------------------------------------

void UsageProcessor::Maintain(int64_t stream_time) {
  constexpr size_t kBatch = 10'000;  // bounded work per punctuation; the rest next time
  auto expire = [&](state::KeyValueStore& store, char tag, int64_t cutoff, auto&& primary_of) {
    std::string begin(1, tag);
    std::string end = begin;
    state::AppendOrderedInt64(end, cutoff);
    std::vector<std::string> doomed;
    store.Range(begin, end, [&](std::string_view k, std::string_view) {
      doomed.emplace_back(k);
      return doomed.size() < kBatch;
    });
    for (const auto& k : doomed) {
      store.Delete(primary_of(std::string_view(k).substr(9)));
      store.Delete(k);
    }
  };
  expire(*dedup_, keys::kDedupExpiryTag, stream_time - options_->dedup_retention_ms,
         [](std::string_view rest) {
           // rest = str org | eventId
           auto org = keys::KeyOrg(rest);
           std::string_view id = rest.substr(4 + (org ? org->size() : 0));
           return keys::DedupKey(org.value_or(""), id);
         });
  results_->ExpireBefore(stream_time - options_->command_result_retention_ms, kBatch);
  if (last_rollup_ == INT64_MIN || stream_time - last_rollup_ >= options_->rollup_interval_ms) {
    last_rollup_ = stream_time;
    ScheduledRollup(stream_time);
  }
}

void UsageProcessor::ScheduledRollup(int64_t stream_time) {
  for (const auto& org : OrganizationsInTask()) {
    OrgSettings settings = OrgSettings::Load(*orgs_, org);
    const std::string before = settings.ToJson().dump();
    for (const auto& m : options_->catalog.metrics) {
      for (Granularity g : {Granularity::kMinute, Granularity::kHour, Granularity::kDay}) {
        const int64_t keep = options_->retention.For(g);
        if (keep == RetentionPolicy::kForever) continue;
        RollupSeries(org, m, g, BucketStart(g, stream_time - keep), settings);
      }
    }
    if (settings.ToJson().dump() != before) settings.Save(*orgs_, org);
  }
}

}  // namespace cm::usage
