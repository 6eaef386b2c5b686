#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "processors/usage/time_util.h"
#include "processors/usage/usage_options.h"
#include "state/key_value_store.h"
#include "state/status.h"
#include "state/task_state.h"

namespace cm::usage {

// The stores the queries read: committed views (what HTTP uses: TaskState::
// committed_key_value_store) or a task's live stores (tests, before a commit).
struct UsageStoreViews {
  state::ReadOnlyKeyValueStore* aggregates = nullptr;
  state::ReadOnlyKeyValueStore* totals = nullptr;
  state::ReadOnlyKeyValueStore* orgs = nullptr;
  state::ReadOnlyKeyValueStore* alerts = nullptr;
  state::ReadOnlyKeyValueStore* command_results = nullptr;

  static UsageStoreViews Committed(state::TaskState& task);
  static UsageStoreViews Live(state::TaskState& task);
  bool complete() const { return aggregates && totals && orgs && alerts && command_results; }
};

// The seeds' AggregationQuery. Times are epoch ms; the range is half-open [start, end) and
// both ends must lie on bucket boundaries of the granularity (UTC; months start on the 1st),
// so every figure is exactly the sum over the events in the range.
struct AggregationQuery {
  int64_t start_time = 0;
  int64_t end_time = 0;
  Granularity granularity = Granularity::kHour;
  std::vector<std::string> metric_types;  // empty: every catalog metric
  std::vector<std::string> dimensions;    // group-by; each must be allowed by every metric
};

// From HTTP query parameters: startTime, endTime (ISO-8601 or epoch ms), granularity,
// metricTypes=a,b and dimensions=userId,resourceType (comma lists).
state::Result<AggregationQuery> ParseAggregationQuery(
    const std::map<std::string, std::string>& params);
// From a JSON object with the same field names (arrays or comma lists).
state::Result<AggregationQuery> ParseAggregationQuery(const nlohmann::json& query);

// GET .../quota/check: metricType (required) and amount (default 1; a plain decimal >= 0,
// never "0x10", " 5" or "inf").
struct QuotaCheckQuery {
  std::string metric_type;
  double amount = 1;
};
state::Result<QuotaCheckQuery> ParseQuotaCheckQuery(
    const std::map<std::string, std::string>& params);

// GET .../report: periodStart and periodEnd (required, as ParseTimestampString reads them) and
// format (json, the default, or csv).
struct ReportQuery {
  int64_t period_start = 0;
  int64_t period_end = 0;
  bool csv = false;
};
state::Result<ReportQuery> ParseReportQuery(const std::map<std::string, std::string>& params);

// The read side of the seeds' UsageAnalyticsAggregator. Every method answers from the stores
// of the task that owns the organization; InvalidArgument (HTTP 400) for bad parameters.
// Methods that depend on the current time take it as `now` (the HTTP layer's clock).
class UsageQueries {
 public:
  UsageQueries(const UsageOptions& options, UsageStoreViews stores)
      : options_(options), stores_(stores) {}

  // {organizationId, startTime, endTime, granularity, metricTypes, dimensions,
  //  dataPoints: [{timestamp, metricType, value, dimensions}], totals: {metricType: value}}.
  // dataPoints list the buckets that have events, ordered by timestamp, metric, dimensions;
  // totals are over the whole range, ungrouped (unique_count: the estimate of the union).
  // When the range reaches buckets that were rolled up at this granularity, "rolledUpBefore"
  // gives, per metric, the time before which this granularity has no buckets any more.
  state::Result<nlohmann::json> GetAggregatedMetrics(const std::string& org,
                                                     const AggregationQuery& query) const;
  // The seeds' QuotaStatus: {organizationId, plan, periodStart, periodEnd, billingAnchorDay,
  //  metrics: [{metricType, used, limit (null: unlimited), remaining, percentage (0..100),
  //  exceeded (used > limit), quotaScope, unit}]} for the metrics the plan lists.
  state::Result<nlohmann::json> GetQuotaStatus(const std::string& org, int64_t now) const;
  // {allowed, remaining, limit, used, amount, metricType, plan}: allowed when used + amount
  // <= limit (or unlimited: remaining and limit null). Read-only; two point lookups.
  state::Result<nlohmann::json> CheckQuota(const std::string& org, const std::string& metric_type,
                                           double amount, int64_t now) const;
  // The seeds' UsageReport for [periodStart, periodEnd) (whole minutes): reportId (stable for
  // org and period), summary, lineItems (quantity, includedQuantity, overageQuantity,
  // unitPrice, pricePer, amount in the plan's currency, rounded to cents), generatedAt = now.
  // Lifetime metrics report their total at the period's end. The plan is the one in force at
  // the end of the period.
  state::Result<nlohmann::json> GenerateUsageReport(const std::string& org, int64_t period_start,
                                                    int64_t period_end, int64_t now) const;
  state::Result<std::string> GenerateUsageReportCsv(const std::string& org, int64_t period_start,
                                                    int64_t period_end, int64_t now) const;
  // {currentPeriod, trends: {weekOverWeek, monthOverMonth}, topUsers, topDocuments, realtime}.
  // Trends compare the last 7 (30) days with the 7 (30) before, in whole hours up to the end
  // of the current hour; top lists cover the current billing period; realtime covers the last
  // five minute buckets (the current one included).
  state::Result<nlohmann::json> GetDashboardData(const std::string& org, int64_t now) const;
  // The organization's quota-alert subscriptions.
  state::Result<nlohmann::json> ListAlertSubscriptions(const std::string& org) const;

 private:
  const UsageOptions& options_;
  UsageStoreViews stores_;
};

// RFC 4180 CSV of a report: one row per line item, then base_price and total rows.
std::string UsageReportToCsv(const nlohmann::json& report);

}  // namespace cm::usage
