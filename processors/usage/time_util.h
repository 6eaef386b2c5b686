#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "state/status.h"

namespace cm::usage {

// UTC calendar arithmetic for usage buckets and billing periods. All times are epoch
// milliseconds; nothing here reads a clock.

inline constexpr int64_t kSecondMs = 1'000;
inline constexpr int64_t kMinuteMs = 60 * kSecondMs;
inline constexpr int64_t kHourMs = 60 * kMinuteMs;
inline constexpr int64_t kDayMs = 24 * kHourMs;
// Times before the epoch or after 9999-12-31 are rejected, so every time fits these bounds.
inline constexpr int64_t kMinTimeMs = 0;
inline constexpr int64_t kMaxTimeMs = 253'402'300'800'000;  // 10000-01-01T00:00:00Z

enum class Granularity : uint8_t { kMinute = 0, kHour = 1, kDay = 2, kMonth = 3 };
inline constexpr std::array<Granularity, 4> kGranularities = {
    Granularity::kMinute, Granularity::kHour, Granularity::kDay, Granularity::kMonth};

const char* GranularityName(Granularity g);
std::optional<Granularity> ParseGranularity(std::string_view name);

struct CivilDate {
  int64_t year = 1970;
  unsigned month = 1;  // 1..12
  unsigned day = 1;    // 1..31
};

int64_t FloorDiv(int64_t a, int64_t b);
// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t year, unsigned month, unsigned day);
CivilDate CivilFromDays(int64_t days);
bool IsLeapYear(int64_t year);
unsigned DaysInMonth(int64_t year, unsigned month);

// Start of the bucket of granularity g that contains ts (months are calendar months, UTC).
int64_t BucketStart(Granularity g, int64_t ts);
// End (exclusive) of the bucket that starts at bucket_start: the next bucket's start.
int64_t BucketEnd(Granularity g, int64_t bucket_start);
// The smallest bucket boundary >= ts.
int64_t BucketCeil(Granularity g, int64_t ts);
inline bool IsAligned(Granularity g, int64_t ts) { return BucketStart(g, ts) == ts; }

// 2024-05-01T12:00:00.000Z
std::string FormatTimestamp(int64_t ms);

// Accepts RFC 3339 / ISO-8601 date-times with a zone ("2024-05-01T12:00:00Z",
// "2024-05-01T14:00:00.250+02:00", fractions of up to 9 digits, truncated to ms), a date alone
// ("2024-05-01", midnight UTC), or epoch milliseconds as decimal digits. Years 1970..9999.
state::Result<int64_t> ParseTimestampString(std::string_view text);
// A JSON string as above, or a JSON integer (epoch milliseconds).
state::Result<int64_t> ParseTimestamp(const nlohmann::json& value);

// A billing period [start, end). Periods are monthly and start at 00:00 UTC on the anchor day
// (1..31); in months shorter than the anchor day the period starts on the month's last day.
struct Period {
  int64_t start = 0;
  int64_t end = 0;
  bool operator==(const Period&) const = default;
};
Period BillingPeriodAt(int64_t ts, int anchor_day);

}  // namespace cm::usage
