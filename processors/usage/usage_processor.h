#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "processors/usage/metric_catalog.h"
#include "processors/usage/org_settings.h"
#include "processors/usage/usage_options.h"
#include "topology/processor/command_results.h"
#include "topology/processor/processor.h"

namespace cm::usage {

inline constexpr char kUsageSourceNode[] = "usage-source";
inline constexpr char kUsageProcessorNode[] = "usage-processor";
inline constexpr char kQuotaAlertsSinkNode[] = "usage-quota-alerts-sink";

// The usage application's one processor. It reads cloudmatrix.events (usage events) and
// cloudmatrix.commands (usage.* commands; other applications' commands are ignored), keeps
// every store of usage_stores.h, and sends quota.threshold_crossed records to the quota-alerts
// sink. Everything it does follows from record timestamps and contents: no wall clock, no
// randomness, so a replay rebuilds the same state and emits the same alerts (or none, where
// the fired markers already exist).
class UsageProcessor final : public topology::Processor {
 public:
  explicit UsageProcessor(std::shared_ptr<const UsageOptions> options);
  void Init(topology::ProcessorContext& context) override;
  void Process(const topology::Record& record) override;

  struct RollupResult {
    uint64_t rolled_up = 0;  // bucket entries dropped (all dimension groups)
    uint64_t errors = 0;
    uint64_t organizations = 0;
  };

 private:
  struct CommandOutcome {
    int status = 200;
    nlohmann::json body;
  };

  void ProcessEvent(const topology::Record& record);
  void ProcessCommand(const topology::Record& record);
  CommandOutcome SetPlan(const std::string& org, const nlohmann::json& command, int64_t now);
  CommandOutcome SubscribeAlerts(const std::string& org, const nlohmann::json& command,
                                 int64_t now);
  CommandOutcome Rollup(const std::string& org, const nlohmann::json& command, int64_t now);

  void CountEvent(const UsageEvent& event, const OrgSettings& settings,
                  std::set<std::string>& affected);
  void RebuildPeriodTotals(const std::string& org, const OrgSettings& settings, int64_t now);
  void CheckAlerts(const std::string& org, const OrgSettings& settings,
                   const MetricDefinition& metric, int64_t usage_time, int64_t now,
                   const nlohmann::json& trigger);
  // The metrics the organization has alert subscriptions on (usually none), from the index
  // key: one point read per event, which the record cache answers, instead of a scan. An
  // organization without the index (first seen, or subscribed before it existed) is scanned
  // once and indexed.
  std::set<std::string, std::less<>> SubscribedMetrics(const std::string& org);
  void SaveSubscribedMetrics(const std::string& org,
                             const std::set<std::string, std::less<>>& metrics);
  void CheckAllAlerts(const std::string& org, const OrgSettings& settings, int64_t now,
                      const nlohmann::json& trigger);
  // Drops buckets of granularity g ending at or before cutoff for one org and metric.
  uint64_t RollupSeries(const std::string& org, const MetricDefinition& metric, Granularity g,
                        int64_t cutoff, OrgSettings& settings);
  std::vector<std::string> OrganizationsInTask();

  void Maintain(int64_t stream_time);
  void ScheduledRollup(int64_t stream_time);

  std::shared_ptr<const UsageOptions> options_;
  topology::ProcessorContext* context_ = nullptr;
  state::KeyValueStore* aggregates_ = nullptr;
  state::KeyValueStore* totals_ = nullptr;
  state::KeyValueStore* orgs_ = nullptr;
  state::KeyValueStore* alerts_ = nullptr;
  state::KeyValueStore* dedup_ = nullptr;
  std::optional<topology::CommandResults> results_;
  int64_t last_rollup_ = INT64_MIN;
};

// Deterministic ids (hex of Hash64 over the identifying fields).
std::string SubscriptionIdFor(const std::string& org, const std::string& metric,
                              const std::vector<double>& thresholds,
                              const std::vector<std::string>& channels);
std::string AlertIdFor(const std::string& subscription_id, double threshold, int64_t period_start);

}  // namespace cm::usage
