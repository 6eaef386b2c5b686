#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "processors/usage/hyper_log_log.h"

namespace cm::usage {

enum class Aggregation { kCount, kSum, kUniqueCount, kMax, kLatest };
const char* AggregationName(Aggregation a);
std::optional<Aggregation> ParseAggregation(std::string_view name);

// Exact fixed-point quantities: nano-units in 128 bits. Every contribution is converted once
// (integer part exact, fraction rounded to 1e-9), so sums do not depend on the order events
// arrive in or on how buckets are merged: a rollup or a query over coarser buckets gives the
// very same figure as the sum over the raw events.
using Nanos = __int128;
inline constexpr int64_t kNanosPerUnit = 1'000'000'000;
Nanos ToNanos(double value);  // |value| < 9.2e18
double NanosToDouble(Nanos n);
// a + b clamped to the range of Nanos: sums never wrap, whatever a changelog held.
Nanos SaturatingAdd(Nanos a, Nanos b);
// An integral double as a JSON integer, anything else as a JSON number.
nlohmann::json NumberJson(double v);

// The state of one aggregate (one metric, bucket and dimension group). `events` counts the
// contributing events for every aggregation; the other fields serve one aggregation each.
struct Aggregate {
  uint64_t events = 0;
  Nanos sum = 0;                 // kSum
  std::optional<double> max;     // kMax
  std::optional<double> latest;  // kLatest: value of the latest event, ordered by
  int64_t latest_ts = 0;         //   (event time, eventId), so arrival order does not
  std::string latest_event_id;   //   matter
  HyperLogLog hll;               // kUniqueCount

  // One event's contribution; `number` for sum/max/latest, `text` for unique_count.
  void AddEvent(Aggregation kind, double number, std::string_view text, int64_t event_ts,
                std::string_view event_id);
  void Merge(Aggregation kind, const Aggregate& other);
  // The figure a query reports: count, sum, HLL estimate, max, or latest value.
  double Value(Aggregation kind) const;
  bool Empty() const { return events == 0; }

  std::string Encode(Aggregation kind) const;
  static std::optional<Aggregate> Decode(Aggregation kind, std::string_view bytes);
};

}  // namespace cm::usage
