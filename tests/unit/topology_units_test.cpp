#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "topology/common/units.h"

namespace cm::topology {
namespace {

using namespace std::chrono_literals;

void ExpectDuration(const std::string& text, std::chrono::milliseconds expected) {
  auto parsed = ParseDuration(text);
  ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status().ToString();
  EXPECT_EQ(parsed.value(), expected) << text;
}

void ExpectBadDuration(const std::string& text) {
  auto parsed = ParseDuration(text);
  ASSERT_FALSE(parsed.ok()) << "'" << text << "' parsed as " << parsed.value().count() << "ms";
  EXPECT_EQ(parsed.status().code(), state::Status::Code::kInvalidArgument);
}

void ExpectBytes(const std::string& text, uint64_t expected) {
  auto parsed = ParseBytes(text);
  ASSERT_TRUE(parsed.ok()) << text << ": " << parsed.status().ToString();
  EXPECT_EQ(parsed.value(), expected) << text;
}

void ExpectBadBytes(const std::string& text) {
  auto parsed = ParseBytes(text);
  ASSERT_FALSE(parsed.ok()) << "'" << text << "' parsed as " << parsed.value();
  EXPECT_EQ(parsed.status().code(), state::Status::Code::kInvalidArgument);
}

TEST(TopologyUnitsTest, ParsesDurations) {
  ExpectDuration("500ms", 500ms);
  ExpectDuration("5s", 5s);
  ExpectDuration("1m", 1min);
  ExpectDuration("2h", 2h);
  ExpectDuration("1d", 24h);
  ExpectDuration("30000", 30s);  // a bare number is milliseconds
  ExpectDuration("0", 0ms);
  ExpectDuration("0s", 0ms);
  ExpectDuration("90m", 5400s);
  ExpectDuration("7d", 168h);
}

TEST(TopologyUnitsTest, RejectsBadDurations) {
  ExpectBadDuration("5x");
  ExpectBadDuration("");
  ExpectBadDuration("ms");
  ExpectBadDuration("s");
  ExpectBadDuration("-5s");
  ExpectBadDuration("5 s");
  ExpectBadDuration("5sec");
  ExpectBadDuration("5S");
  ExpectBadDuration("1.5s");
}

TEST(TopologyUnitsTest, RejectsDurationsAndSizesThatOverflow) {
  ExpectBadDuration("9223372036854775807s");
  ExpectBadDuration("300000000000000d");
  ExpectBadBytes("20000000000GiB");
  EXPECT_TRUE(ParseDuration("106751991167d").ok());  // just below the int64 millisecond limit
}

TEST(TopologyUnitsTest, ParsesBytes) {
  ExpectBytes("256MiB", 256ULL << 20);
  ExpectBytes("1GiB", 1ULL << 30);
  ExpectBytes("64KiB", 64ULL << 10);
  ExpectBytes("1000", 1000);
  ExpectBytes("1000000", 1'000'000);
  ExpectBytes("5MB", 5'000'000);
  ExpectBytes("2GB", 2'000'000'000);
  ExpectBytes("3KB", 3'000);
  ExpectBytes("7B", 7);
  ExpectBytes("16GiB", 16ULL << 30);  // does not overflow 32 bits
}

TEST(TopologyUnitsTest, RejectsBadBytes) {
  ExpectBadBytes("12XB");
  ExpectBadBytes("");
  ExpectBadBytes("MiB");
  ExpectBadBytes("-1MiB");
  ExpectBadBytes("1.5GiB");
  ExpectBadBytes("10 MiB");
  ExpectBadBytes("10mib");
}

}  // namespace
}  // namespace cm::topology
