#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "processors/usage/metric_catalog.h"
#include "processors/usage/time_util.h"
#include "processors/usage/usage_event.h"
#include "processors/usage/usage_limits.h"
#include "state/status.h"

namespace cm::usage {

// How long buckets of each granularity are kept (by their end, relative to stream time). Every
// event is added to its minute, hour, day and month bucket when it is processed, so dropping
// the buckets of a fine granularity loses nothing the coarser ones do not already hold: that
// is the rollup. Defaults: minutes 2 days, hours 90 days, days and months forever.
struct RetentionPolicy {
  static constexpr int64_t kForever = std::numeric_limits<int64_t>::max();
  int64_t minute_ms = 2 * kDayMs;
  int64_t hour_ms = 90 * kDayMs;
  int64_t day_ms = kForever;
  int64_t month_ms = kForever;

  int64_t For(Granularity g) const;
  // Finer granularities may not outlive coarser ones; months are never dropped (nothing is
  // coarser); days must cover the 35-day acceptance window plus a billing period (62 days),
  // since quota totals are rebuilt from days when a billing anchor changes.
  state::Status Validate() const;
};

struct UsageOptions {
  Catalog catalog = DefaultCatalog();
  std::string events_topic = "cloudmatrix.events";
  std::string commands_topic = "cloudmatrix.commands";
  std::string quota_alerts_topic = "cloudmatrix.quota-alerts";
  RetentionPolicy retention;
  EventTimeBounds event_time_bounds;
  // Input limits of the HTTP routes and the processor (flags of `cmstream run`).
  UsageLimits limits;
  // An eventId is remembered this long after its event time (by stream time). It must exceed
  // the 35-day acceptance window: an event can only be accepted while its time is at most 35
  // days before its record's timestamp, so a redelivery after 36 days is refused by that bound
  // anyway (the extra day absorbs record timestamps that run behind stream time).
  int64_t dedup_retention_ms = 36 * kDayMs;
  // Command results are kept this long (stream time) for retried commands and waiting callers.
  int64_t command_result_retention_ms = 7 * kDayMs;
  // Stream-time punctuations: expiry of dedup entries and command results, and the scheduled
  // rollup by the retention policy.
  int64_t maintenance_interval_ms = kMinuteMs;
  int64_t rollup_interval_ms = kHourMs;

  state::Status Validate() const;
};

}  // namespace cm::usage
