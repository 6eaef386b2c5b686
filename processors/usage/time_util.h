#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "state/status.h"
#include "topology/common/timestamp.h"

namespace cm::usage {

// UTC calendar arithmetic for usage buckets and billing periods. All times are epoch
// milliseconds; nothing here reads a clock. The calendar itself and the timestamp format are
// the engine's, shared with the other applications.

using topology::CivilDate;
using topology::CivilFromDays;
using topology::DaysFromCivil;
using topology::DaysInMonth;
using topology::FloorDiv;
using topology::FormatTimestamp;
using topology::IsLeapYear;
using topology::kDayMs;
using topology::kHourMs;
using topology::kMaxTimeMs;
using topology::kMinTimeMs;
using topology::kMinuteMs;
using topology::kSecondMs;
using topology::ParseTimestamp;
using topology::ParseTimestampString;

enum class Granularity : uint8_t { kMinute = 0, kHour = 1, kDay = 2, kMonth = 3 };
inline constexpr std::array<Granularity, 4> kGranularities = {
    Granularity::kMinute, Granularity::kHour, Granularity::kDay, Granularity::kMonth};

const char* GranularityName(Granularity g);
std::optional<Granularity> ParseGranularity(std::string_view name);

// Start of the bucket of granularity g that contains ts (months are calendar months, UTC).
int64_t BucketStart(Granularity g, int64_t ts);
// End (exclusive) of the bucket that starts at bucket_start: the next bucket's start.
int64_t BucketEnd(Granularity g, int64_t bucket_start);
// The smallest bucket boundary >= ts.
int64_t BucketCeil(Granularity g, int64_t ts);
inline bool IsAligned(Granularity g, int64_t ts) { return BucketStart(g, ts) == ts; }

// A billing period [start, end). Periods are monthly and start at 00:00 UTC on the anchor day
// (1..31); in months shorter than the anchor day the period starts on the month's last day.
struct Period {
  int64_t start = 0;
  int64_t end = 0;
  bool operator==(const Period&) const = default;
};
Period BillingPeriodAt(int64_t ts, int anchor_day);

}  // namespace cm::usage
