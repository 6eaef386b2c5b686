// usage::OrgSettings as read back from usage-orgs (and its changelog): what ToJson wrote comes
// back unchanged; a field of the wrong type or range is left at its default, never thrown.
#include "processors/usage/org_settings.h"
#include "usage_test_support.h"

namespace cm::usage::testing {
namespace {

TEST(OrgSettings, RoundTripsThroughJson) {
  OrgSettings s;
  s.AddPlanChange("pro", Ms("2024-04-01"));
  s.AddPlanChange("enterprise", Ms("2024-05-01"));
  s.billing_anchor_day = 15;
  s.SetRolledUpBefore("api_calls", Granularity::kMinute, Ms("2024-04-20"));
  const json j = s.ToJson();
  EXPECT_EQ(OrgSettings::FromJson(j).ToJson(), j);
}

// Found by fuzz_usage_store_values: json::value threw on a field of the wrong type, and an
// effectiveFrom such as 1e69 was converted to int64_t (undefined behaviour).
TEST(OrgSettings, FieldsOfTheWrongTypeAreLeftAtTheirDefaults) {
  const json j = json::parse(R"({
    "planHistory": [{"plan": 5, "effectiveFrom": 1}, {"plan": "pro", "effectiveFrom": "x"},
                    {"plan": "pro", "effectiveFrom": 1e69}, "free",
                    {"plan": "enterprise", "effectiveFrom": 1714521600000}],
    "billingAnchorDay": "15"})");
  OrgSettings s;
  ASSERT_NO_THROW(s = OrgSettings::FromJson(j));
  ASSERT_EQ(s.plan_history.size(), 1u);
  EXPECT_EQ(s.plan_history[0].plan, "enterprise");
  EXPECT_EQ(s.billing_anchor_day, 1);
}

// An anchor day outside 1..31 gave billing periods that do not contain their own time.
TEST(OrgSettings, AnAnchorDayOutOfRangeIsTheDefault) {
  for (int day : {0, -3, 32, 1000}) {
    const OrgSettings s = OrgSettings::FromJson({{"billingAnchorDay", day}});
    EXPECT_EQ(s.billing_anchor_day, 1) << day;
    const int64_t t = Ms("2024-04-30T12:00:00Z");
    const Period p = s.PeriodAt(t);
    EXPECT_LE(p.start, t) << day;
    EXPECT_LT(t, p.end) << day;
  }
}

}  // namespace
}  // namespace cm::usage::testing
