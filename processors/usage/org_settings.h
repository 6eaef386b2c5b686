#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "processors/usage/metric_catalog.h"
#include "processors/usage/time_util.h"
#include "state/key_value_store.h"

namespace cm::usage {

struct PlanChange {
  std::string plan;
  int64_t effective_from = 0;
};

// One organization's settings (store usage-orgs, JSON): the plan history, the billing anchor
// day, and per metric and granularity the time before which buckets were rolled up (dropped):
// a bucket ending at or before that mark is never written again, so a late event cannot
// leave a partial fine bucket behind; it still counts in the coarser buckets that remain.
struct OrgSettings {
  static constexpr size_t kMaxPlanHistory = 100;
  std::vector<PlanChange> plan_history;  // by effective_from
  int billing_anchor_day = 1;
  std::map<std::string, std::array<int64_t, 4>> rolled_up_before;

  // The plan in force at t (the catalog's default before any change).
  std::string PlanAt(int64_t t, const Catalog& catalog) const;
  void AddPlanChange(std::string plan, int64_t effective_from);
  int64_t RolledUpBefore(const std::string& metric, Granularity g) const;
  void SetRolledUpBefore(const std::string& metric, Granularity g, int64_t t);
  Period PeriodAt(int64_t t) const { return BillingPeriodAt(t, billing_anchor_day); }

  nlohmann::json ToJson() const;
  static OrgSettings FromJson(const nlohmann::json& j);
  static OrgSettings Load(state::ReadOnlyKeyValueStore& orgs, const std::string& org);
  void Save(state::KeyValueStore& orgs, const std::string& org) const;
};

}  // namespace cm::usage
