#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "state/status.h"

namespace cm::topology {

// UTC calendar arithmetic and the one timestamp format every application reads and writes. All
// times are epoch milliseconds; nothing here reads a clock.

inline constexpr int64_t kSecondMs = 1'000;
inline constexpr int64_t kMinuteMs = 60 * kSecondMs;
inline constexpr int64_t kHourMs = 60 * kMinuteMs;
inline constexpr int64_t kDayMs = 24 * kHourMs;
// Times before the epoch or after 9999-12-31 are rejected, so every time fits these bounds.
inline constexpr int64_t kMinTimeMs = 0;
inline constexpr int64_t kMaxTimeMs = 253'402'300'800'000;  // 10000-01-01T00:00:00Z

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

// ISO-8601 UTC with milliseconds ("2026-12-02T13:14:49.000Z"): how applications answer with
// times and how command results record when they were applied.
std::string FormatTimestamp(int64_t epoch_ms);

// Accepts RFC 3339 / ISO-8601 date-times with a zone ("2024-05-01T12:00:00Z",
// "2024-05-01T14:00:00.250+02:00", fractions of up to 9 digits, truncated to ms), a date alone
// ("2024-05-01", midnight UTC), or epoch milliseconds as decimal digits. Years 1970..9999.
state::Result<int64_t> ParseTimestampString(std::string_view text);
// A JSON string as above, or a JSON integer (epoch milliseconds).
state::Result<int64_t> ParseTimestamp(const nlohmann::json& value);

}  // namespace cm::topology
