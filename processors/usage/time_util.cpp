#include "processors/usage/time_util.h"

#include <algorithm>

namespace cm::usage {

const char* GranularityName(Granularity g) {
  switch (g) {
    case Granularity::kMinute:
      return "minute";
    case Granularity::kHour:
      return "hour";
    case Granularity::kDay:
      return "day";
    case Granularity::kMonth:
      return "month";
  }
  return "unknown";
}

std::optional<Granularity> ParseGranularity(std::string_view name) {
  for (Granularity g : kGranularities) {
    if (name == GranularityName(g)) return g;
  }
  return std::nullopt;
}

namespace {

int64_t MonthStart(int64_t year, unsigned month) { return DaysFromCivil(year, month, 1) * kDayMs; }

int64_t NextMonthStart(int64_t ts) {
  CivilDate c = CivilFromDays(FloorDiv(ts, kDayMs));
  return c.month == 12 ? MonthStart(c.year + 1, 1) : MonthStart(c.year, c.month + 1);
}

}  // namespace

int64_t BucketStart(Granularity g, int64_t ts) {
  switch (g) {
    case Granularity::kMinute:
      return FloorDiv(ts, kMinuteMs) * kMinuteMs;
    case Granularity::kHour:
      return FloorDiv(ts, kHourMs) * kHourMs;
    case Granularity::kDay:
      return FloorDiv(ts, kDayMs) * kDayMs;
    case Granularity::kMonth: {
      CivilDate c = CivilFromDays(FloorDiv(ts, kDayMs));
      return MonthStart(c.year, c.month);
    }
  }
  return ts;
}

int64_t BucketEnd(Granularity g, int64_t bucket_start) {
  switch (g) {
    case Granularity::kMinute:
      return bucket_start + kMinuteMs;
    case Granularity::kHour:
      return bucket_start + kHourMs;
    case Granularity::kDay:
      return bucket_start + kDayMs;
    case Granularity::kMonth:
      return NextMonthStart(bucket_start);
  }
  return bucket_start;
}

int64_t BucketCeil(Granularity g, int64_t ts) {
  int64_t start = BucketStart(g, ts);
  return start == ts ? ts : BucketEnd(g, start);
}

Period BillingPeriodAt(int64_t ts, int anchor_day) {
  auto start_in = [anchor_day](int64_t year, unsigned month) {
    unsigned d = std::min<unsigned>(static_cast<unsigned>(anchor_day), DaysInMonth(year, month));
    return DaysFromCivil(year, month, d) * kDayMs;
  };
  CivilDate c = CivilFromDays(FloorDiv(ts, kDayMs));
  int64_t y = c.year;
  unsigned m = c.month;
  int64_t start = start_in(y, m);
  if (ts < start) {  // the period began in the previous month
    if (m == 1) {
      y -= 1;
      m = 12;
    } else {
      m -= 1;
    }
    start = start_in(y, m);
  }
  int64_t ny = m == 12 ? y + 1 : y;
  unsigned nm = m == 12 ? 1 : m + 1;
  return {start, start_in(ny, nm)};
}

}  // namespace cm::usage
