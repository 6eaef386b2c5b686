// Usage quota: plans, limits, billing periods, checkQuota edge cases, alerts once only.
#include "processors/usage/usage_processor.h"
#include "usage_test_support.h"

namespace cm::usage::testing {
namespace {

using ::testing::HasSubstr;

// The default catalog plus a small plan that tests can reach.
UsageOptions TinyPlanOptions() {
  json c = json::parse(DefaultCatalogJson());
  c["plans"].push_back({{"name", "tiny"},
                        {"metrics",
                         {{"api_calls", {{"limit", 10}}},
                          {"storage_bytes", {{"limit", 1000}}},
                          {"collaborators", {{"limit", 2}}}}}});
  UsageOptions o;
  o.catalog = Ok(ParseCatalog(c));
  return o;
}

json MetricOf(const json& status, const std::string& metric) {
  for (const auto& m : status["metrics"]) {
    if (m["metricType"] == metric) return m;
  }
  return json();
}

const int64_t kNow = Ms("2024-03-10T12:00:00Z");

TEST(UsageQuota, CheckQuotaExactlyAtTheLimit) {
  UsageHarness h(TinyPlanOptions());
  const std::string org = "org-q";
  ASSERT_EQ(h.Command(org, "usage.set_plan", "plan-1", {{"plan", "tiny"}}, kNow - kDayMs)["status"],
            200);
  for (int i = 0; i < 9; ++i) h.Event(Ev("c" + std::to_string(i), org, "api.call", kNow - i), kNow);
  auto q = h.Queries(org);
  json r = Ok(q.CheckQuota(org, "api_calls", 1, kNow));
  EXPECT_EQ(r["allowed"], true) << "9 + 1 = 10: exactly at the limit is allowed";
  EXPECT_EQ(r["remaining"], 1);
  EXPECT_EQ(r["limit"], 10);
  EXPECT_EQ(Ok(q.CheckQuota(org, "api_calls", 2, kNow))["allowed"], false);
  // Amounts past what nano-units hold once wrapped around to "allowed" (issue 14).
  for (double huge : {9.3e18, 1e19, 1.8e19, 1e300}) {
    EXPECT_EQ(Ok(q.CheckQuota(org, "api_calls", huge, kNow))["allowed"], false) << huge;
  }
  h.Event(Ev("c9", org, "api.call", kNow), kNow);
  r = Ok(q.CheckQuota(org, "api_calls", 0, kNow));
  EXPECT_EQ(r["allowed"], true);
  EXPECT_EQ(r["remaining"], 0);
  EXPECT_EQ(r["used"], 10);
  EXPECT_EQ(Ok(q.CheckQuota(org, "api_calls", 1, kNow))["allowed"], false);
  json at = MetricOf(Ok(q.GetQuotaStatus(org, kNow)), "api_calls");
  EXPECT_EQ(at["percentage"], 100);
  EXPECT_EQ(at["exceeded"], false) << "at the limit is not over it";
  h.Event(Ev("c10", org, "api.call", kNow), kNow);
  json over = MetricOf(Ok(q.GetQuotaStatus(org, kNow)), "api_calls");
  EXPECT_EQ(over["used"], 11);
  EXPECT_EQ(over["exceeded"], true);
  EXPECT_EQ(over["percentage"], 100) << "percentage stays within 0..100";
  EXPECT_EQ(over["remaining"], 0);
  // A metric the plan does not list is unlimited; bad parameters are 400s.
  json docs = Ok(q.CheckQuota(org, "documents", 1e9, kNow));
  EXPECT_EQ(docs["allowed"], true);
  EXPECT_TRUE(docs["limit"].is_null());
  EXPECT_EQ(q.CheckQuota(org, "bogus", 1, kNow).status().code(),
            state::Status::Code::kInvalidArgument);
  EXPECT_EQ(q.CheckQuota(org, "api_calls", -1, kNow).status().code(),
            state::Status::Code::kInvalidArgument);
  EXPECT_EQ(q.CheckQuota(org, "api_calls", std::nan(""), kNow).status().code(),
            state::Status::Code::kInvalidArgument);
  // Next billing period: usage starts from zero.
  EXPECT_EQ(Ok(q.CheckQuota(org, "api_calls", 10, Ms("2024-04-01T00:00:00Z")))["allowed"], true);
}

TEST(UsageQuota, UnlimitedPlansAndLifetimeScope) {
  UsageHarness h(TinyPlanOptions());
  const std::string org = "org-l";
  h.Command(org, "usage.set_plan", "p1", {{"plan", "tiny"}}, Ms("2024-02-01T00:00:00Z"));
  // Storage is lifetime-scoped: February's uploads still occupy space in March.
  h.Event(Ev("s1", org, "storage.upload", Ms("2024-02-20T00:00:00Z"), {{"quantity", 600}}), kNow);
  h.Event(Ev("s2", org, "storage.upload", Ms("2024-03-02T00:00:00Z"), {{"quantity", 300}}), kNow);
  h.Event(Ev("s3", org, "storage.delete", Ms("2024-03-03T00:00:00Z"), {{"quantity", 100}}), kNow);
  h.Event(Ev("a1", org, "api.call", Ms("2024-02-20T00:00:00Z")),
          kNow);  // period-scoped: February only
  auto q = h.Queries(org);
  json status = Ok(q.GetQuotaStatus(org, kNow));
  EXPECT_EQ(status["plan"], "tiny");
  EXPECT_EQ(status["periodStart"], "2024-03-01T00:00:00.000Z");
  EXPECT_EQ(status["periodEnd"], "2024-04-01T00:00:00.000Z");
  EXPECT_EQ(MetricOf(status, "storage_bytes")["used"], 800);
  EXPECT_EQ(MetricOf(status, "storage_bytes")["quotaScope"], "lifetime");
  EXPECT_EQ(MetricOf(status, "storage_bytes")["percentage"], 80);
  EXPECT_EQ(MetricOf(status, "api_calls")["used"], 0);
  EXPECT_EQ(Ok(q.CheckQuota(org, "storage_bytes", 200, kNow))["allowed"], true);
  EXPECT_EQ(Ok(q.CheckQuota(org, "storage_bytes", 200.5, kNow))["allowed"], false);
  EXPECT_EQ(Ok(q.CheckQuota(org, "api_calls", 1, Ms("2024-02-25T00:00:00Z")))["used"], 1);

  // Enterprise: unlimited everywhere.
  h.Command(org, "usage.set_plan", "p2", {{"plan", "enterprise"}}, kNow);
  json r = Ok(q.CheckQuota(org, "storage_bytes", 1e14, kNow + 1));
  EXPECT_EQ(r["allowed"], true);
  EXPECT_TRUE(r["remaining"].is_null());
  EXPECT_TRUE(r["limit"].is_null());
  json ent = MetricOf(Ok(q.GetQuotaStatus(org, kNow + 1)), "api_calls");
  EXPECT_TRUE(ent["limit"].is_null());
  EXPECT_EQ(ent["exceeded"], false);
}

TEST(UsageQuota, PlanChangesByCommandAndByEventAreIdempotentAndTimed) {
  UsageHarness h(TinyPlanOptions());
  const std::string org = "org-p";
  auto q = h.Queries(org);
  EXPECT_EQ(Ok(q.GetQuotaStatus(org, kNow))["plan"], "free") << "the default plan";
  json r = h.Command(org, "usage.set_plan", "cmd-1", {{"plan", "tiny"}}, kNow);
  EXPECT_EQ(r["status"], 200);
  EXPECT_EQ(r["body"]["plan"], "tiny");
  EXPECT_EQ(r["body"]["previousPlan"], "free");
  EXPECT_EQ(r["body"]["effectiveFrom"], FormatTimestamp(kNow));
  // The same commandId again (an HTTP retry) is not applied again, whatever it says.
  json retry = h.Command(org, "usage.set_plan", "cmd-1", {{"plan", "pro"}}, kNow + 1000);
  EXPECT_EQ(retry, r);
  EXPECT_EQ(Ok(q.GetQuotaStatus(org, kNow + 2000))["plan"], "tiny");
  // Errors are results too, with DESIGN §6's shape.
  json bad = h.Command(org, "usage.set_plan", "cmd-2", {{"plan", "platinum"}}, kNow + 3000);
  EXPECT_EQ(bad["status"], 400);
  EXPECT_EQ(bad["body"]["error"]["code"], "validation_error");
  EXPECT_THAT(bad["body"]["error"]["message"].get<std::string>(),
              HasSubstr("unknown plan 'platinum'"));
  EXPECT_EQ(bad["body"]["error"]["details"]["plans"], json({"free", "pro", "enterprise", "tiny"}));
  EXPECT_EQ(h.Command(org, "usage.set_plan", "cmd-3", {{"plan", "pro"}, {"billingAnchorDay", 0}},
                      kNow)["status"],
            400);
  EXPECT_EQ(h.Command(org, "usage.frobnicate", "cmd-4", json::object(), kNow)["status"], 400);
  // billing.subscription_changed events set the plan from their event time on.
  h.Event(Ev("sub-1", org, "billing.subscription_changed", kNow + kHourMs,
             {{"metadata", {{"plan", "pro"}}}}),
          kNow + kHourMs);
  EXPECT_EQ(Ok(q.GetQuotaStatus(org, kNow - 1))["plan"], "free");
  EXPECT_EQ(Ok(q.GetQuotaStatus(org, kNow + 1))["plan"], "tiny");
  EXPECT_EQ(Ok(q.GetQuotaStatus(org, kNow + kHourMs))["plan"], "pro");
  EXPECT_EQ(Ok(q.CheckQuota(org, "api_calls", 1, kNow + kHourMs))["limit"], 1000000);
  // A command without commandId cannot report a result: DLQ. Other applications' commands: ignored.
  h.driver().PipeInput(kCommands, org, json({{"type", "usage.set_plan"}, {"plan", "pro"}}).dump(),
                       kNow);
  h.driver().PipeInput(kCommands, org,
                       json({{"type", "teams.create"}, {"commandId", "t-1"}}).dump(), kNow);
  auto dlq = h.Dlq();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_THAT(Reason(dlq[0]), HasSubstr("needs a commandId"));
  EXPECT_TRUE(h.CommandResult(org, "t-1").is_null());
}

TEST(UsageQuota, BillingPeriodsFollowTheAnchorDay) {
  EXPECT_EQ(BillingPeriodAt(Ms("2024-03-10T12:00:00Z"), 1),
            (Period{Ms("2024-03-01T00:00:00Z"), Ms("2024-04-01T00:00:00Z")}));
  EXPECT_EQ(BillingPeriodAt(Ms("2024-03-10T12:00:00Z"), 15),
            (Period{Ms("2024-02-15T00:00:00Z"), Ms("2024-03-15T00:00:00Z")}));
  EXPECT_EQ(BillingPeriodAt(Ms("2024-03-15T00:00:00Z"), 15),
            (Period{Ms("2024-03-15T00:00:00Z"), Ms("2024-04-15T00:00:00Z")}));
  // Anchor 31: short months start their period on their last day (leap February: the 29th).
  EXPECT_EQ(BillingPeriodAt(Ms("2024-02-29T12:00:00Z"), 31),
            (Period{Ms("2024-02-29T00:00:00Z"), Ms("2024-03-31T00:00:00Z")}));
  EXPECT_EQ(BillingPeriodAt(Ms("2024-02-28T12:00:00Z"), 31),
            (Period{Ms("2024-01-31T00:00:00Z"), Ms("2024-02-29T00:00:00Z")}));
  EXPECT_EQ(BillingPeriodAt(Ms("2023-02-28T12:00:00Z"), 30),
            (Period{Ms("2023-02-28T00:00:00Z"), Ms("2023-03-30T00:00:00Z")}));
  EXPECT_EQ(BillingPeriodAt(Ms("2024-01-05T00:00:00Z"), 10),
            (Period{Ms("2023-12-10T00:00:00Z"), Ms("2024-01-10T00:00:00Z")}));

  // Changing an organization's anchor rebuilds its current period's usage from day buckets.
  UsageHarness h(TinyPlanOptions());
  const std::string org = "org-anchor";
  const int64_t now = Ms("2024-03-20T12:00:00Z");
  for (int day = 1; day <= 20; ++day) {
    h.Event(Ev("d" + std::to_string(day), org, "api.call",
               Ms("2024-03-01T08:00:00Z") + (day - 1) * kDayMs),
            now);
  }
  auto q = h.Queries(org);
  EXPECT_EQ(Ok(q.CheckQuota(org, "api_calls", 0, now))["used"], 20);
  json r = h.Command(org, "usage.set_plan", "anchor-15",
                     {{"plan", "pro"}, {"billingAnchorDay", 15}}, now);
  ASSERT_EQ(r["status"], 200);
  EXPECT_EQ(r["body"]["periodStart"], "2024-03-15T00:00:00.000Z");
  json status = Ok(q.GetQuotaStatus(org, now));
  EXPECT_EQ(status["periodStart"], "2024-03-15T00:00:00.000Z");
  EXPECT_EQ(status["billingAnchorDay"], 15);
  EXPECT_EQ(MetricOf(status, "api_calls")["used"], 6);  // March 15..20
  h.Event(Ev("d21", org, "api.call", now), now);
  h.Event(Ev("late", org, "api.call", Ms("2024-03-14T23:59:59.999Z")), now);  // previous period
  EXPECT_EQ(Ok(q.CheckQuota(org, "api_calls", 0, now))["used"], 7);
  EXPECT_EQ(Ok(q.CheckQuota(org, "api_calls", 0, Ms("2024-03-14T12:00:00Z")))["used"], 15);
}

TEST(UsageQuota, AlertsFireOncePerThresholdAndPeriodAcrossRestarts) {
  UsageHarness h(TinyPlanOptions());
  const std::string org = "org-alert";
  h.Command(org, "usage.set_plan", "plan", {{"plan", "tiny"}}, kNow - kDayMs);
  json sub = h.Command(org, "usage.subscribe_alerts", "sub-1",
                       {{"metricType", "api_calls"},
                        {"thresholds", {80, 50, 100}},
                        {"notificationChannels", {"webhook", "email"}}},
                       kNow - kDayMs);
  ASSERT_EQ(sub["status"], 201) << sub.dump();
  const std::string sub_id = sub["body"]["subscriptionId"];
  EXPECT_EQ(sub["body"]["thresholds"], json({50, 80, 100}));
  EXPECT_EQ(sub["body"]["notificationChannels"], json({"email", "webhook"}));
  // The same subscription again is the same subscription.
  json same = h.Command(org, "usage.subscribe_alerts", "sub-2",
                        {{"metricType", "api_calls"},
                         {"thresholds", {50, 80, 100}},
                         {"notificationChannels", {"email", "webhook"}}},
                        kNow - kDayMs);
  EXPECT_EQ(same["status"], 200);
  EXPECT_EQ(same["body"]["subscriptionId"], sub_id);
  EXPECT_EQ(same["body"]["created"], false);

  auto call = [&](int i, int64_t ts) {
    h.Event(Ev("call-" + std::to_string(i), org, "api.call", ts), ts);
  };
  for (int i = 0; i < 4; ++i) call(i, kNow + i);
  EXPECT_TRUE(h.Alerts().empty());
  call(4, kNow + 4);  // 5 of 10: 50%
  auto alerts = h.Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  const json a = alerts[0];
  EXPECT_EQ(a["type"], "quota.threshold_crossed");
  EXPECT_EQ(a["organizationId"], org);
  EXPECT_EQ(a["subscriptionId"], sub_id);
  EXPECT_EQ(a["metricType"], "api_calls");
  EXPECT_EQ(a["threshold"], 50);
  EXPECT_EQ(a["used"], 5);
  EXPECT_EQ(a["limit"], 10);
  EXPECT_EQ(a["percentage"], 50);
  EXPECT_EQ(a["plan"], "tiny");
  EXPECT_EQ(a["periodStart"], "2024-03-01T00:00:00.000Z");
  EXPECT_EQ(a["notificationChannels"], json({"email", "webhook"}));
  EXPECT_EQ(a["occurredAt"], FormatTimestamp(kNow + 4));
  EXPECT_EQ(a["triggeredBy"]["eventId"], "call-4");
  EXPECT_EQ(a["alertId"], AlertIdFor(sub_id, 50, Ms("2024-03-01T00:00:00Z")));
  EXPECT_EQ(a["eventId"], a["alertId"]) << "webhooks deduplicate on it";
  for (int i = 5; i < 8; ++i) call(i, kNow + i);  // 8 of 10: 80%
  alerts = h.Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0]["threshold"], 80);

  // Restart from committed state and redeliver everything: no alert is sent twice.
  h.driver().Commit();
  ASSERT_TRUE(h.driver().Restart().ok());
  for (int i = 0; i < 8; ++i) call(i, kNow + i);
  EXPECT_TRUE(h.Alerts().empty());
  call(8, kNow + 8);
  EXPECT_TRUE(h.Alerts().empty());
  call(9, kNow + 9);  // 10 of 10
  alerts = h.Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0]["threshold"], 100);
  for (int i = 10; i < 15; ++i) call(i, kNow + i);
  EXPECT_TRUE(h.Alerts().empty()) << "over 100% it stays quiet for the rest of the period";
  h.driver().Commit();
  ASSERT_TRUE(h.driver().Restart().ok());
  call(15, kNow + 15);
  EXPECT_TRUE(h.Alerts().empty());

  // A new billing period: each threshold can fire once more.
  const int64_t april = Ms("2024-04-02T00:00:00Z");
  for (int i = 0; i < 5; ++i) call(100 + i, april + i);
  alerts = h.Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0]["threshold"], 50);
  EXPECT_EQ(alerts[0]["periodStart"], "2024-04-01T00:00:00.000Z");
  EXPECT_NE(alerts[0]["alertId"], a["alertId"]);
}

// Each event looks the organization's subscribed metrics up in an index key rather than
// scanning its subscriptions. An organization seen before it subscribed, and one whose state was
// written before the index existed, must alert all the same.
TEST(UsageQuota, EventsAlertWhetherTheOrgWasSeenBeforeItSubscribedOrHasNoIndexYet) {
  UsageHarness h(TinyPlanOptions());
  auto call = [&](const std::string& org, const std::string& id, int64_t ts) {
    h.Event(Ev(id, org, "api.call", ts), ts);
  };
  const std::string seen = "org-seen-first";
  h.Command(seen, "usage.set_plan", "plan-seen", {{"plan", "tiny"}}, kNow - kDayMs);
  for (int i = 0; i < 3; ++i) call(seen, "s" + std::to_string(i), kNow + i);  // 30%: no sub yet
  ASSERT_EQ(h.Command(seen, "usage.subscribe_alerts", "sub-seen",
                      {{"metricType", "api_calls"}, {"threshold", 50}}, kNow + 10)["status"],
            201);
  EXPECT_TRUE(h.Alerts().empty());
  call(seen, "s3", kNow + 11);
  EXPECT_TRUE(h.Alerts().empty());
  call(seen, "s4", kNow + 12);  // 50%
  auto alerts = h.Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0]["organizationId"], seen);
  EXPECT_EQ(alerts[0]["triggeredBy"]["eventId"], "s4");

  const std::string legacy = "org-without-index";
  h.Command(legacy, "usage.set_plan", "plan-legacy", {{"plan", "tiny"}}, kNow - kDayMs);
  ASSERT_EQ(h.Command(legacy, "usage.subscribe_alerts", "sub-legacy",
                      {{"metricType", "api_calls"}, {"threshold", 20}}, kNow)["status"],
            201);
  // As if written before the index: the subscription is there, its index key is not.
  state::KeyValueStore* alerts_store =
      h.driver().TaskFor(kEvents, legacy).state().key_value_store(kAlertsStore);
  ASSERT_NE(alerts_store, nullptr);
  ASSERT_TRUE(alerts_store->Get(keys::AlertMetricsKey(legacy)).has_value());
  alerts_store->Delete(keys::AlertMetricsKey(legacy));
  h.driver().Commit();
  call(legacy, "l0", kNow + 1);
  EXPECT_TRUE(h.Alerts().empty());
  call(legacy, "l1", kNow + 2);  // 20%
  alerts = h.Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0]["organizationId"], legacy);
  EXPECT_EQ(alerts[0]["triggeredBy"]["eventId"], "l1");
  EXPECT_TRUE(alerts_store->Get(keys::AlertMetricsKey(legacy)).has_value())
      << "the first event rebuilt the index";
}

TEST(UsageQuota, AlertsOnSubscribeAndPlanChangeAndValidation) {
  UsageHarness h(TinyPlanOptions());
  const std::string org = "org-down";
  for (int i = 0; i < 9; ++i)
    h.Event(Ev("e" + std::to_string(i), org, "api.call", kNow + i), kNow + i);
  // On free (10,000 calls) 9 calls are far from 80%.
  json sub = h.Command(org, "usage.subscribe_alerts", "s1",
                       {{"metricType", "api_calls"}, {"threshold", 80}}, kNow + 10);
  ASSERT_EQ(sub["status"], 201);
  EXPECT_EQ(sub["body"]["notificationChannels"], json({"in_app"}));
  EXPECT_TRUE(h.Alerts().empty());
  // A downgrade to 10 calls puts usage at 90%: the alert fires at the plan change.
  h.Command(org, "usage.set_plan", "down", {{"plan", "tiny"}}, kNow + 20);
  auto alerts = h.Alerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0]["threshold"], 80);
  EXPECT_EQ(alerts[0]["triggeredBy"]["commandId"], "down");
  // A subscription created when usage is already past its threshold fires at once, once.
  json storage = h.Command(
      org, "usage.subscribe_alerts", "s2",
      {{"metricType", "api_calls"}, {"thresholds", {75, 90}}, {"notificationChannels", {"email"}}},
      kNow + 30);
  ASSERT_EQ(storage["status"], 201);
  alerts = h.Alerts();
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0]["threshold"], 75);
  EXPECT_EQ(alerts[1]["threshold"], 90);
  // Validation.
  auto status_of = [&](const std::string& id, json fields) {
    return h.Command(org, "usage.subscribe_alerts", id, std::move(fields), kNow + 40)["status"];
  };
  EXPECT_EQ(status_of("v1", {{"metricType", "api_calls"}, {"threshold", 150}}), 400);
  EXPECT_EQ(status_of("v2", {{"metricType", "api_calls"}, {"threshold", 0}}), 400);
  EXPECT_EQ(status_of("v3", {{"metricType", "nope"}, {"threshold", 50}}), 400);
  EXPECT_EQ(status_of("v4", {{"metricType", "api_calls"}}), 400);
  EXPECT_EQ(status_of("v5", {{"metricType", "api_calls"},
                             {"threshold", 50},
                             {"notificationChannels", {"sms"}}}),
            400);
  EXPECT_EQ(Ok(h.Queries(org).ListAlertSubscriptions(org))["subscriptions"].size(), 2u);
  EXPECT_TRUE(h.Alerts().empty());
}

}  // namespace
}  // namespace cm::usage::testing
