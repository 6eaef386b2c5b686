// The usage stores as Postgres snapshot rows (processors/usage/usage_snapshot_schema.h): each
// store entry decodes to the columns of its table, deletes to the key columns, and the value
// column is the figure the HTTP API reports.
#include "processors/usage/usage_snapshot_schema.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "processors/usage/aggregate.h"
#include "processors/usage/metric_catalog.h"
#include "processors/usage/org_settings.h"
#include "processors/usage/time_util.h"
#include "processors/usage/usage_stores.h"

namespace cm::usage {
namespace {

using Row = topology::SnapshotTable::Row;

const topology::SnapshotTable& Table(const topology::SnapshotSchema& schema,
                                     const std::string& name) {
  for (const auto& t : schema.tables) {
    if (t.table == name) return t;
  }
  throw std::runtime_error("no table " + name);
}

// The column named `column` of `row`.
std::optional<std::string> Col(const topology::SnapshotTable& t, const Row& row,
                               const std::string& column) {
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (t.columns[i] == column) return row.at(i);
  }
  throw std::runtime_error("no column " + column);
}

class UsageSnapshotSchemaTest : public ::testing::Test {
 protected:
  const Catalog& catalog_ = DefaultCatalog();
  topology::SnapshotSchema schema_ = UsageSnapshotSchema(catalog_);
  const int64_t t_ = ParseTimestampString("2024-05-01T12:34:00Z").value();
};

TEST_F(UsageSnapshotSchemaTest, InternalStoresAreNotSnapshotted) {
  EXPECT_TRUE(schema_.HasStore(kAggregatesStore));
  EXPECT_TRUE(schema_.HasStore(kTotalsStore));
  EXPECT_TRUE(schema_.HasStore(kOrgsStore));
  EXPECT_TRUE(schema_.HasStore(kAlertsStore));
  EXPECT_FALSE(schema_.HasStore(kDedupStore));
  EXPECT_FALSE(schema_.HasStore(kCommandResultsStore));
}

TEST_F(UsageSnapshotSchemaTest, UngroupedSumAggregateIsTheReportedFigure) {
  const auto& t = Table(schema_, "usage_aggregates");
  Aggregate a;
  a.AddEvent(Aggregation::kSum, 1.5, "", t_, "e1");
  a.AddEvent(Aggregation::kSum, 0.25, "", t_, "e2");
  const std::string key = keys::AggregateKey("org-1", "storage_bytes", Granularity::kHour, "",
                                             BucketStart(Granularity::kHour, t_), {});
  const std::string value = a.Encode(Aggregation::kSum);
  auto row = t.decode(key, value);
  ASSERT_TRUE(row);
  ASSERT_EQ(row->size(), t.columns.size());
  EXPECT_EQ(Col(t, *row, "organization_id"), "org-1");
  EXPECT_EQ(Col(t, *row, "metric_type"), "storage_bytes");
  EXPECT_EQ(Col(t, *row, "granularity"), "hour");
  EXPECT_EQ(Col(t, *row, "bucket_start"), "2024-05-01T12:00:00.000Z");
  EXPECT_EQ(Col(t, *row, "dimension_key"), "");
  EXPECT_EQ(std::stod(*Col(t, *row, "value")), 1.75);
  EXPECT_EQ(Col(t, *row, "events"), "2");
  EXPECT_EQ(Col(t, *row, "dimensions"), "{}");
  EXPECT_EQ(Col(t, *row, "aggregation"), "sum");
}

TEST_F(UsageSnapshotSchemaTest, GroupedAggregateHasItsDimensionKey) {
  const auto& t = Table(schema_, "usage_aggregates");
  Aggregate a;
  a.AddEvent(Aggregation::kCount, 0, "", t_, "e1");
  const std::string key = keys::AggregateKey("org-1", "api_calls", Granularity::kMinute, "userId",
                                             t_, {std::string("a&b=c")});
  auto row = t.decode(key, a.Encode(Aggregation::kCount));
  ASSERT_TRUE(row);
  EXPECT_EQ(Col(t, *row, "dimension_key"), DimensionKey({"userId"}, {std::string("a&b=c")}));
  EXPECT_EQ(Col(t, *row, "dimension_key"), "userId=a%26b%3Dc");
  EXPECT_EQ(nlohmann::json::parse(*Col(t, *row, "dimensions")),
            nlohmann::json({{"userId", "a&b=c"}}));
  EXPECT_EQ(Col(t, *row, "value"), "1");
}

TEST_F(UsageSnapshotSchemaTest, UniqueCountIsTheHyperLogLogEstimate) {
  const auto& t = Table(schema_, "usage_aggregates");
  Aggregate a;
  for (int i = 0; i < 1000; ++i) {
    a.AddEvent(Aggregation::kUniqueCount, 0, "user-" + std::to_string(i), t_, "e");
  }
  const std::string key = keys::AggregateKey("org-1", "active_users", Granularity::kDay, "",
                                             BucketStart(Granularity::kDay, t_), {});
  auto row = t.decode(key, a.Encode(Aggregation::kUniqueCount));
  ASSERT_TRUE(row);
  EXPECT_EQ(std::stod(*Col(t, *row, "value")), a.Value(Aggregation::kUniqueCount));
  EXPECT_EQ(Col(t, *row, "aggregation"), "unique_count");
}

TEST_F(UsageSnapshotSchemaTest, DeletedAggregateDecodesToItsKeyColumns) {
  const auto& t = Table(schema_, "usage_aggregates");
  const std::string key =
      keys::AggregateKey("org-1", "api_calls", Granularity::kMinute, "", t_, {});
  auto row = t.decode(key, std::nullopt);
  ASSERT_TRUE(row);
  ASSERT_GE(row->size(), t.key_columns);
  EXPECT_EQ((*row)[0], "org-1");
  EXPECT_EQ((*row)[2], "minute");
  EXPECT_EQ((*row)[3], "2024-05-01T12:34:00.000Z");
}

TEST_F(UsageSnapshotSchemaTest, UnknownMetricAndGarbageAreSkipped) {
  const auto& t = Table(schema_, "usage_aggregates");
  Aggregate a;
  a.AddEvent(Aggregation::kCount, 0, "", t_, "e1");
  EXPECT_FALSE(t.decode(keys::AggregateKey("o", "no_such_metric", Granularity::kDay, "", 0, {}),
                        a.Encode(Aggregation::kCount)));
  EXPECT_FALSE(t.decode("garbage", std::string_view("x")));
}

TEST_F(UsageSnapshotSchemaTest, TotalsPerPeriodAndLifetime) {
  const auto& t = Table(schema_, "usage_totals");
  Aggregate a;
  a.AddEvent(Aggregation::kCount, 0, "", t_, "e1");
  a.AddEvent(Aggregation::kCount, 0, "", t_, "e2");
  const int64_t period = ParseTimestampString("2024-05-01T00:00:00Z").value();
  auto row =
      t.decode(keys::TotalPeriodKey("org-1", "api_calls", period), a.Encode(Aggregation::kCount));
  ASSERT_TRUE(row);
  EXPECT_EQ(Col(t, *row, "period_start"), "2024-05-01T00:00:00.000Z");
  EXPECT_EQ(Col(t, *row, "scope"), "period");
  EXPECT_EQ(Col(t, *row, "value"), "2");
  auto life = t.decode(keys::TotalLifetimeKey("org-1", "api_calls"), a.Encode(Aggregation::kCount));
  ASSERT_TRUE(life);
  EXPECT_EQ(Col(t, *life, "period_start"), "-infinity");
  EXPECT_EQ(Col(t, *life, "scope"), "lifetime");
}

TEST_F(UsageSnapshotSchemaTest, OrgSettingsCarryTheLatestPlan) {
  const auto& t = Table(schema_, "usage_org_settings");
  OrgSettings s;
  s.AddPlanChange("pro", t_);
  s.billing_anchor_day = 15;
  auto row = t.decode("org-1", s.ToJson().dump());
  ASSERT_TRUE(row);
  EXPECT_EQ(Col(t, *row, "organization_id"), "org-1");
  EXPECT_EQ(Col(t, *row, "plan"), "pro");
  EXPECT_EQ(Col(t, *row, "plan_effective_from"), FormatTimestamp(t_));
  EXPECT_EQ(Col(t, *row, "billing_anchor_day"), "15");
  auto defaults = t.decode("org-2", OrgSettings{}.ToJson().dump());
  ASSERT_TRUE(defaults);
  EXPECT_EQ(Col(t, *defaults, "plan"), std::nullopt);
}

TEST_F(UsageSnapshotSchemaTest, AlertStoreFeedsTwoTables) {
  const auto& subs = Table(schema_, "usage_alert_subscriptions");
  const auto& fired = Table(schema_, "usage_fired_alerts");
  const std::string sub_key = keys::AlertSubscriptionKey("org-1", "api_calls", "sub-1");
  const std::string fired_key = keys::AlertFiredKey("org-1", "sub-1", 80.5, t_);
  const std::string sub_json = R"({"subscriptionId":"sub-1","thresholds":[80]})";

  auto sub = subs.decode(sub_key, sub_json);
  ASSERT_TRUE(sub);
  EXPECT_EQ(Col(subs, *sub, "subscription_id"), "sub-1");
  EXPECT_EQ(Col(subs, *sub, "metric_type"), "api_calls");
  EXPECT_EQ(nlohmann::json::parse(*Col(subs, *sub, "subscription")),
            nlohmann::json::parse(sub_json));
  EXPECT_FALSE(subs.decode(fired_key, std::string_view("alert-1")));

  auto f = fired.decode(fired_key, std::string_view("alert-1"));
  ASSERT_TRUE(f);
  EXPECT_EQ(Col(fired, *f, "subscription_id"), "sub-1");
  EXPECT_EQ(std::stod(*Col(fired, *f, "threshold")), 80.5);
  EXPECT_EQ(Col(fired, *f, "period_start"), FormatTimestamp(t_));
  EXPECT_EQ(Col(fired, *f, "alert_id"), "alert-1");
  EXPECT_FALSE(fired.decode(sub_key, sub_json));
}

}  // namespace
}  // namespace cm::usage
