#include "processors/usage/org_settings.h"

#include <algorithm>
#include <limits>

#include "processors/usage/usage_options.h"

namespace cm::usage {

using nlohmann::json;

namespace {
constexpr int64_t kNever = std::numeric_limits<int64_t>::min();
}

int64_t RetentionPolicy::For(Granularity g) const {
  switch (g) {
    case Granularity::kMinute:
      return minute_ms;
    case Granularity::kHour:
      return hour_ms;
    case Granularity::kDay:
      return day_ms;
    case Granularity::kMonth:
      return month_ms;
  }
  return kForever;
}

state::Status RetentionPolicy::Validate() const {
  if (minute_ms <= 0 || hour_ms < minute_ms || day_ms < hour_ms || month_ms < day_ms) {
    return state::Status::InvalidArgument("retention: need 0 < minute <= hour <= day <= month");
  }
  if (month_ms != kForever)
    return state::Status::InvalidArgument("retention: months are kept forever");
  if (day_ms < 62 * kDayMs)
    return state::Status::InvalidArgument("retention: days must be kept at least 62 days");
  return state::Status::OK();
}

state::Status UsageOptions::Validate() const {
  if (auto s = retention.Validate(); !s.ok()) return s;
  if (auto s = limits.Validate(); !s.ok()) return s;
  if (dedup_retention_ms <= event_time_bounds.max_age_ms + event_time_bounds.max_future_ms) {
    return state::Status::InvalidArgument(
        "dedup retention must exceed the acceptance window (max event age + future skew)");
  }
  if (maintenance_interval_ms <= 0 || rollup_interval_ms <= 0 || command_result_retention_ms <= 0) {
    return state::Status::InvalidArgument("intervals and retentions must be positive");
  }
  if (events_topic.empty() || commands_topic.empty() || quota_alerts_topic.empty()) {
    return state::Status::InvalidArgument("topic names must not be empty");
  }
  return state::Status::OK();
}

std::string OrgSettings::PlanAt(int64_t t, const Catalog& catalog) const {
  std::string plan = catalog.default_plan;
  for (const auto& c : plan_history) {
    if (c.effective_from > t) break;
    plan = c.plan;
  }
  if (!catalog.FindPlan(plan)) plan = catalog.default_plan;  // a plan the catalog dropped
  return plan;
}

void OrgSettings::AddPlanChange(std::string plan, int64_t effective_from) {
  auto it = std::upper_bound(plan_history.begin(), plan_history.end(), effective_from,
                             [](int64_t t, const PlanChange& c) { return t < c.effective_from; });
  plan_history.insert(it, PlanChange{std::move(plan), effective_from});
  if (plan_history.size() > kMaxPlanHistory) plan_history.erase(plan_history.begin());
}

int64_t OrgSettings::RolledUpBefore(const std::string& metric, Granularity g) const {
  auto it = rolled_up_before.find(metric);
  return it == rolled_up_before.end() ? kNever : it->second[static_cast<size_t>(g)];
}

void OrgSettings::SetRolledUpBefore(const std::string& metric, Granularity g, int64_t t) {
  auto [it, inserted] = rolled_up_before.try_emplace(metric);
  if (inserted) it->second.fill(kNever);
  auto& slot = it->second[static_cast<size_t>(g)];
  slot = std::max(slot, t);
}

json OrgSettings::ToJson() const {
  json history = json::array();
  for (const auto& c : plan_history)
    history.push_back({{"plan", c.plan}, {"effectiveFrom", c.effective_from}});
  json marks = json::object();
  for (const auto& [metric, arr] : rolled_up_before) {
    json m = json::object();
    for (Granularity g : kGranularities) {
      if (arr[static_cast<size_t>(g)] != kNever)
        m[GranularityName(g)] = arr[static_cast<size_t>(g)];
    }
    marks[metric] = m;
  }
  return {{"planHistory", history},
          {"billingAnchorDay", billing_anchor_day},
          {"rolledUpBefore", marks}};
}

OrgSettings OrgSettings::FromJson(const json& j) {
  // What ToJson wrote, read back; a field of the wrong type or out of range is left at its
  // default rather than thrown (json::value throws on a type mismatch) or converted (a float
  // such as 1e69 does not fit an int64_t).
  OrgSettings s;
  if (!j.is_object()) return s;
  if (auto it = j.find("planHistory"); it != j.end() && it->is_array()) {
    for (const auto& c : *it) {
      if (!c.is_object()) continue;
      auto plan = c.find("plan");
      auto from = c.find("effectiveFrom");
      if (plan == c.end() || !plan->is_string() || from == c.end() || !from->is_number_integer())
        continue;
      // Kept sorted and bounded, as AddPlanChange keeps them.
      s.AddPlanChange(plan->get<std::string>(), from->get<int64_t>());
    }
  }
  if (auto it = j.find("billingAnchorDay"); it != j.end() && it->is_number_integer() &&
                                            it->get<int64_t>() >= 1 && it->get<int64_t>() <= 31)
    s.billing_anchor_day = it->get<int>();
  if (auto it = j.find("rolledUpBefore"); it != j.end() && it->is_object()) {
    for (auto m = it->begin(); m != it->end(); ++m) {
      for (Granularity g : kGranularities) {
        auto v = m->find(GranularityName(g));
        if (v != m->end() && v->is_number_integer())
          s.SetRolledUpBefore(m.key(), g, v->get<int64_t>());
      }
    }
  }
  return s;
}

OrgSettings OrgSettings::Load(state::ReadOnlyKeyValueStore& orgs, const std::string& org) {
  auto v = orgs.Get(org);
  if (!v) return {};
  return FromJson(json::parse(*v, nullptr, false));
}

void OrgSettings::Save(state::KeyValueStore& orgs, const std::string& org) const {
  orgs.Put(org, ToJson().dump());
}

}  // namespace cm::usage
