#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "topology/common/timestamp.h"

namespace cm::topology {
namespace {

// 2024-03-10T12:00:00Z
constexpr int64_t kNoonMs = 1'710'072'000'000;

int64_t Parsed(const std::string& text) {
  auto parsed = ParseTimestampString(text);
  EXPECT_TRUE(parsed.ok()) << text << ": " << parsed.status().ToString();
  return parsed.ok() ? parsed.value() : -1;
}

void ExpectRefused(const std::string& text) {
  auto parsed = ParseTimestampString(text);
  ASSERT_FALSE(parsed.ok()) << "'" << text << "' parsed as " << parsed.value();
  EXPECT_EQ(parsed.status().code(), state::Status::Code::kInvalidArgument);
}

TEST(TopologyTimestampTest, ParsesIsoZonesDatesAndEpochMilliseconds) {
  EXPECT_EQ(Parsed("2024-03-10T12:00:00Z"), kNoonMs);
  EXPECT_EQ(Parsed("2024-03-10T14:00:00+02:00"), kNoonMs);
  EXPECT_EQ(Parsed("2024-03-10T06:30:00-0530"), kNoonMs);
  EXPECT_EQ(Parsed("2024-03-10T12:00:00.123456789Z"), kNoonMs + 123);
  EXPECT_EQ(Parsed("2024-03-10T12:00:00.5z"), kNoonMs + 500);
  EXPECT_EQ(Parsed("2024-03-10"), kNoonMs - 12 * kHourMs);
  EXPECT_EQ(Parsed("1710072000000"), kNoonMs);
  EXPECT_EQ(Parsed("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(Parsed("2024-02-29T23:59:59.999Z"), Parsed("2024-03-01T00:00:00Z") - 1);
}

TEST(TopologyTimestampTest, RefusesTimesWithoutAZoneOrOutsideTheCalendar) {
  ExpectRefused("");
  ExpectRefused("2024-03-10T12:00:00");  // no zone
  ExpectRefused("2024-03-10T12:00");
  ExpectRefused("2023-02-29");  // not a leap year
  ExpectRefused("2024-13-01");
  ExpectRefused("2024-03-10T24:00:00Z");
  ExpectRefused("1969-12-31T23:59:59Z");
  ExpectRefused("1970-01-01T00:30:00+01:00");        // before the epoch once the zone is applied
  ExpectRefused("2024-03-10T12:00:00.1234567890Z");  // more than 9 fraction digits
  ExpectRefused("253402300800000");                  // 10000-01-01
  ExpectRefused("yesterday");
}

TEST(TopologyTimestampTest, ParsesJsonStringsAndIntegers) {
  EXPECT_EQ(ParseTimestamp(nlohmann::json("2024-03-10T12:00:00Z")).value(), kNoonMs);
  EXPECT_EQ(ParseTimestamp(nlohmann::json(kNoonMs)).value(), kNoonMs);
  EXPECT_EQ(ParseTimestamp(nlohmann::json(1710072000000.0)).value(), kNoonMs);
  EXPECT_FALSE(ParseTimestamp(nlohmann::json(-1)).ok());
  EXPECT_FALSE(ParseTimestamp(nlohmann::json(1.5)).ok());
  EXPECT_FALSE(ParseTimestamp(nlohmann::json(1e120)).ok());
  EXPECT_FALSE(ParseTimestamp(nlohmann::json::object()).ok());
}

TEST(TopologyTimestampTest, FormatsUtcMillisecondsAndRoundTrips) {
  EXPECT_EQ(FormatTimestamp(kNoonMs + 7), "2024-03-10T12:00:00.007Z");
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(Parsed(FormatTimestamp(kNoonMs + 999)), kNoonMs + 999);
  // Before the epoch a time floors to the previous second, as gmtime would have it.
  EXPECT_EQ(FormatTimestamp(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatTimestamp(-1000), "1969-12-31T23:59:59.000Z");
  EXPECT_EQ(FormatTimestamp(-kDayMs - 1), "1969-12-30T23:59:59.999Z");
}

}  // namespace
}  // namespace cm::topology
