#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "processors/usage/aggregate.h"
#include "processors/usage/metric_catalog.h"
#include "processors/usage/org_settings.h"
#include "processors/usage/usage_stores.h"
#include "state/key_value_store.h"
#include "state/status.h"

namespace cm::usage {

using GroupedAggregates = std::map<DimValues, Aggregate>;

// Reads one organization's aggregates of one metric from usage-aggregates (a task's writable
// store or a committed view: both are ReadOnlyKeyValueStores).
class AggregateReader {
 public:
  AggregateReader(state::ReadOnlyKeyValueStore& aggregates, std::string org,
                  const MetricDefinition& metric, const OrgSettings& settings)
      : store_(aggregates), org_(std::move(org)), metric_(metric), settings_(settings) {}

  using BucketVisitor = std::function<void(int64_t bucket_start, const DimValues& values,
                                           const Aggregate& aggregate)>;
  // Buckets of granularity g whose start is in [from, to), grouped by `dims` (a sorted subset
  // of the metric's groupBy; empty for the ungrouped figure), in bucket order. One range scan.
  void Scan(Granularity g, const std::vector<std::string>& dims, int64_t from, int64_t to,
            const BucketVisitor& visit);

  // The aggregate of the events in [from, to) (both minute-aligned), grouped by dims, composed
  // of the coarsest buckets that tile the range (months, then days, hours and minutes at the
  // edges). InvalidArgument when a bucket the tiling needs was rolled up.
  state::Result<GroupedAggregates> Total(const std::vector<std::string>& dims, int64_t from,
                                         int64_t to);

  uint64_t decode_errors() const { return decode_errors_; }

 private:
  state::Status Tile(int level, int64_t from, int64_t to, const std::vector<std::string>& dims,
                     GroupedAggregates& out);

  state::ReadOnlyKeyValueStore& store_;
  std::string org_;
  const MetricDefinition& metric_;
  const OrgSettings& settings_;
  uint64_t decode_errors_ = 0;
};

}  // namespace cm::usage
