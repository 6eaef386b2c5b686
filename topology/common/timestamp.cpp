#include "topology/common/timestamp.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

namespace cm::topology {

using state::Result;
using state::Status;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

CivilDate CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

bool IsLeapYear(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(int64_t year, unsigned month) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && IsLeapYear(year)) return 29;
  return kDays[month - 1];
}

// Calendar arithmetic rather than gmtime_r: no time_t range to fall out of, and times before
// 1970 floor to the previous second like every other time here.
std::string FormatTimestamp(int64_t ms) {
  int64_t days = FloorDiv(ms, kDayMs);
  int64_t rem = ms - days * kDayMs;
  CivilDate c = CivilFromDays(days);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ",
                static_cast<long long>(c.year), c.month, c.day,
                static_cast<long long>(rem / kHourMs), static_cast<long long>(rem / kMinuteMs % 60),
                static_cast<long long>(rem / kSecondMs % 60), static_cast<long long>(rem % 1000));
  return buf;
}

namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int64_t& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

Status BadFormat(std::string_view text) {
  return Status::InvalidArgument(
      "timestamp '" + std::string(text.substr(0, 64)) +
      "' is not ISO-8601 with a zone (e.g. 2024-05-01T12:00:00Z) or epoch milliseconds");
}

}  // namespace

Result<int64_t> ParseTimestampString(std::string_view s) {
  if (s.empty()) return BadFormat(s);
  bool all_digits = true;
  for (char ch : s) all_digits &= std::isdigit(static_cast<unsigned char>(ch)) != 0;
  if (all_digits) {
    if (s.size() > 15) return BadFormat(s);
    int64_t v = 0;
    Digits(s, 0, s.size(), v);
    if (v >= kMaxTimeMs) return BadFormat(s);
    return v;
  }
  int64_t year, month, day;
  if (!Digits(s, 0, 4, year) || s.size() < 10 || s[4] != '-' || !Digits(s, 5, 2, month) ||
      s[7] != '-' || !Digits(s, 8, 2, day)) {
    return BadFormat(s);
  }
  if (year < 1970 || month < 1 || month > 12 || day < 1 ||
      day > DaysInMonth(year, static_cast<unsigned>(month))) {
    return Status::InvalidArgument("timestamp '" + std::string(s.substr(0, 64)) +
                                   "' is not a valid calendar date (years 1970..9999)");
  }
  int64_t ms =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * kDayMs;
  if (s.size() == 10) return ms;
  int64_t hh, mi, ss;
  if (s.size() < 19 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !Digits(s, 11, 2, hh) ||
      s[13] != ':' || !Digits(s, 14, 2, mi) || s[16] != ':' || !Digits(s, 17, 2, ss)) {
    return BadFormat(s);
  }
  if (hh > 23 || mi > 59 || ss > 59) {
    return Status::InvalidArgument("timestamp '" + std::string(s.substr(0, 64)) +
                                   "' has an out-of-range time of day");
  }
  ms += hh * kHourMs + mi * kMinuteMs + ss * kSecondMs;
  size_t pos = 19;
  if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
    ++pos;
    size_t begin = pos;
    int64_t frac_ms = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (pos - begin < 3) frac_ms = frac_ms * 10 + (s[pos] - '0');
      ++pos;
    }
    size_t n = pos - begin;
    if (n == 0 || n > 9) return BadFormat(s);
    for (size_t i = n; i < 3; ++i) frac_ms *= 10;
    ms += frac_ms;
  }
  if (pos >= s.size()) return BadFormat(s);  // a zone is required
  if ((s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) return ms;
  if (s[pos] != '+' && s[pos] != '-') return BadFormat(s);
  int sign = s[pos] == '+' ? 1 : -1;
  int64_t oh, om;
  if (!Digits(s, pos + 1, 2, oh)) return BadFormat(s);
  size_t mpos = pos + 3;
  if (mpos < s.size() && s[mpos] == ':') ++mpos;
  if (!Digits(s, mpos, 2, om) || mpos + 2 != s.size() || oh > 23 || om > 59) return BadFormat(s);
  ms -= sign * (oh * kHourMs + om * kMinuteMs);
  if (ms < kMinTimeMs || ms >= kMaxTimeMs) {
    return Status::InvalidArgument("timestamp '" + std::string(s) +
                                   "' is before 1970 or after 9999");
  }
  return ms;
}

Result<int64_t> ParseTimestamp(const nlohmann::json& value) {
  if (value.is_string()) return ParseTimestampString(value.get_ref<const std::string&>());
  if (value.is_number_integer()) {
    int64_t v = value.is_number_unsigned()
                    ? static_cast<int64_t>(std::min<uint64_t>(value.get<uint64_t>(), kMaxTimeMs))
                    : value.get<int64_t>();
    if (v < kMinTimeMs || v >= kMaxTimeMs) {
      return Status::InvalidArgument("timestamp " + std::to_string(v) +
                                     " (epoch ms) is before 1970 or after 9999");
    }
    return v;
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    // The range first: converting a double beyond int64_t (1e120) is undefined behaviour.
    if (!(d >= kMinTimeMs && d < kMaxTimeMs)) {
      return Status::InvalidArgument("timestamp " + value.dump() +
                                     " (epoch ms) is before 1970 or after 9999");
    }
    if (d != std::trunc(d)) {
      return Status::InvalidArgument("timestamp " + value.dump() +
                                     " is not a whole number of epoch milliseconds");
    }
    return static_cast<int64_t>(d);
  }
  return Status::InvalidArgument(
      "timestamp must be an ISO-8601 string or epoch milliseconds, got " +
      std::string(value.type_name()));
}

}  // namespace cm::topology
