#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "processors/usage/time_util.h"
#include "state/store_spec.h"

namespace cm::usage {

// The usage application's stores: all key-value, all logged (changelog
// <app-id>-<store>-changelog), all owned by the task of the organization's partition. The
// HTTP layer opens committed views of them by these names.
//
// Key encodings (str = 4-byte big-endian length + bytes, time = state::AppendOrderedInt64):
//
// usage-aggregates   str org | str metric | granularity byte (0 minute .. 3 month) |
//                    str dimset | time bucketStart | dimension values
//     dimset is "" (the ungrouped figure) or every dimension the metric allows, comma-joined
//     in sorted order (group-bys on fewer dimensions project it at query time).
//     Dimension values: per dimension of the dimset, 0x00 (absent) or 0x01 + str value.
//     So a query for (org, metric, granularity, group-by, [start, end)) is one range scan.
//     Value: Aggregate::Encode for the metric's aggregation.
// usage-totals       str org | str metric | 'P' time periodStart   -> Aggregate (billing period)
//                    str org | str metric | 'L'                    -> Aggregate (all time)
//     Running totals, so that checkQuota is two point lookups (settings + total).
// usage-orgs         org -> JSON OrgSettings (plan history, billing anchor day, rollup marks)
// usage-alerts       str org | 's' | str metric | subscriptionId -> JSON subscription
//                    str org | 'f' | str subscriptionId | time threshold*1000 | time period
//                        -> alertId (the fired marker: at most one alert per key, ever)
//                    str org | 'm' -> str metric... (the metrics with subscriptions: an index
//                        read per event instead of a scan; written on an org's first event)
// usage-dedup        'e' | str org | eventId -> time eventTime + 8-byte content hash
//                    'x' | time eventTime | str org | eventId -> "" (expiry index)
// usage-command-results  topology::CommandResults (results by command id, expiry index)
inline constexpr char kAggregatesStore[] = "usage-aggregates";
inline constexpr char kTotalsStore[] = "usage-totals";
inline constexpr char kOrgsStore[] = "usage-orgs";
inline constexpr char kAlertsStore[] = "usage-alerts";
inline constexpr char kDedupStore[] = "usage-dedup";
inline constexpr char kCommandResultsStore[] = "usage-command-results";

std::vector<state::StoreSpec> UsageStoreSpecs();

using DimValues = std::vector<std::optional<std::string>>;

namespace keys {

std::string Dimset(const std::vector<std::string>& sorted_dims);
std::vector<std::string> SplitDimset(std::string_view dimset);

std::string AggregateOrgPrefix(std::string_view org);
std::string AggregateGranularityPrefix(std::string_view org, std::string_view metric,
                                       Granularity g);
std::string AggregateSeriesPrefix(std::string_view org, std::string_view metric, Granularity g,
                                  std::string_view dimset);
std::string AggregateKey(std::string_view org, std::string_view metric, Granularity g,
                         std::string_view dimset, int64_t bucket_start, const DimValues& values);

struct AggregateKeyParts {
  std::string org;
  std::string metric;
  Granularity granularity = Granularity::kMinute;
  std::string dimset;
  int64_t bucket_start = 0;
  DimValues values;
};
std::optional<AggregateKeyParts> ParseAggregateKey(std::string_view key);
// The org a key of usage-aggregates (or usage-totals) starts with.
std::optional<std::string> KeyOrg(std::string_view key);

std::string TotalPeriodKey(std::string_view org, std::string_view metric, int64_t period_start);
std::string TotalLifetimeKey(std::string_view org, std::string_view metric);
std::string TotalsOrgPrefix(std::string_view org);
std::string TotalsPeriodPrefix(std::string_view org, std::string_view metric);

std::string AlertSubscriptionPrefix(std::string_view org);
std::string AlertSubscriptionMetricPrefix(std::string_view org, std::string_view metric);
std::string AlertSubscriptionKey(std::string_view org, std::string_view metric,
                                 std::string_view subscription_id);
std::string AlertMetricsKey(std::string_view org);
std::string AlertFiredKey(std::string_view org, std::string_view subscription_id, double threshold,
                          int64_t period_start);

std::string DedupKey(std::string_view org, std::string_view event_id);
std::string DedupExpiryKey(int64_t event_time, std::string_view org, std::string_view event_id);
inline constexpr char kDedupExpiryTag = 'x';

}  // namespace keys

// The dimension key of DESIGN §8's usage_aggregates table: '' for the ungrouped figure, else
// name=value pairs joined by '&' in dimset order (values percent-encode '%', '&' and '='; an
// absent value is written as the bare name).
std::string DimensionKey(const std::vector<std::string>& dims, const DimValues& values);
// {"userId": "alice", "resourceType": null}
nlohmann::json DimensionsJson(const std::vector<std::string>& dims, const DimValues& values);

}  // namespace cm::usage
