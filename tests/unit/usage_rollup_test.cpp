// Usage rollups: equivalence at the remaining granularities, late events, the retention policy.
#include <random>

#include "usage_test_support.h"

namespace cm::usage::testing {
namespace {

using ::testing::HasSubstr;

void PipeRandom(UsageHarness& h, const std::string& org, uint32_t seed, int count, int64_t start,
                int64_t span, int64_t record_ts) {
  std::mt19937_64 rng(seed);
  for (int i = 0; i < count; ++i) {
    const int64_t ts = start + static_cast<int64_t>(rng() % static_cast<uint64_t>(span));
    const int kind = static_cast<int>(rng() % 3);
    json extra = {{"userId", "u" + std::to_string(rng() % 9)}};
    std::string type = "api.call";
    if (kind == 1) {
      type = "storage.upload";
      extra["quantity"] = static_cast<double>(rng() % 5000);
    } else if (kind == 2) {
      type = "presence.joined";
      extra["resourceId"] = "doc-" + std::to_string(rng() % 4);
    }
    h.Event(Ev("x-" + std::to_string(seed) + "-" + std::to_string(i), org, type, ts, extra),
            record_ts);
  }
}

TEST(UsageRollup, QueriesAnswerTheSameAtEveryRemainingGranularity) {
  UsageOptions o;
  o.retention.minute_ms = 40 * kDayMs;  // only the explicit rollups below drop anything
  UsageHarness h(o);
  const std::string org = "org-r";
  const int64_t start = Ms("2024-03-01T00:00:00Z");
  const int64_t now = Ms("2024-03-05T00:00:00Z");
  PipeRandom(h, org, 1, 1200, start, 4 * kDayMs, now);
  const std::vector<std::string> metrics = {"api_calls", "storage_bytes", "collaborators",
                                            "active_users", "events"};
  const int64_t month_end = Ms("2024-04-01T00:00:00Z");
  auto snapshot = [&](const std::string& g, std::vector<std::string> dims) {
    return h.Metrics(org, g == "month" ? start : start, g == "month" ? month_end : now, g, metrics,
                     dims);
  };
  const json hour = snapshot("hour", {});
  const json hour_by_user =
      h.Metrics(org, start, now, "hour", {"api_calls", "storage_bytes"}, {"userId"});
  const json day = snapshot("day", {});
  const json day_by_doc = h.Metrics(org, start, now, "day", {"collaborators"}, {"resourceId"});
  const json month = snapshot("month", {});
  const json late_minutes = h.Metrics(org, now - kDayMs, now, "minute", metrics);

  // Fold minutes older than 3 days into the coarser buckets (they already hold them) and drop them.
  const int64_t cutoff = now - kDayMs;
  json r = h.Command(
      org, "usage.rollup", "roll-1",
      {{"metricType", "*"}, {"cutoffTime", FormatTimestamp(cutoff)}, {"granularities", {"minute"}}},
      now);
  ASSERT_EQ(r["status"], 200) << r.dump();
  EXPECT_GT(r["body"]["rolledUp"].get<int>(), 1000);
  EXPECT_EQ(r["body"]["errors"], 0);
  EXPECT_EQ(r["body"]["cutoffTime"], FormatTimestamp(cutoff));
  EXPECT_EQ(snapshot("hour", {}), hour);
  EXPECT_EQ(h.Metrics(org, start, now, "hour", {"api_calls", "storage_bytes"}, {"userId"}),
            hour_by_user);
  EXPECT_EQ(snapshot("day", {}), day);
  EXPECT_EQ(h.Metrics(org, start, now, "day", {"collaborators"}, {"resourceId"}), day_by_doc);
  EXPECT_EQ(snapshot("month", {}), month);
  // Minutes after the cutoff remain as they were; before it they are gone, and the answer says so.
  EXPECT_EQ(h.Metrics(org, cutoff, now, "minute", metrics), late_minutes);
  json old_minutes = h.Metrics(org, start, start + kHourMs, "minute", {"api_calls"});
  EXPECT_TRUE(old_minutes["dataPoints"].empty());
  EXPECT_EQ(old_minutes["rolledUpBefore"]["api_calls"], FormatTimestamp(cutoff));

  // A retried command is not applied twice: the stored result stands.
  json again = h.Command(
      org, "usage.rollup", "roll-1",
      {{"metricType", "*"}, {"cutoffTime", FormatTimestamp(now)}, {"granularities", {"minute"}}},
      now);
  EXPECT_EQ(again, r);

  // Then hours older than the cutoff into days: days and months still answer the same.
  json r2 = h.Command(
      org, "usage.rollup", "roll-2",
      {{"metricType", "*"}, {"cutoffTime", FormatTimestamp(cutoff)}, {"granularities", {"hour"}}},
      now);
  ASSERT_EQ(r2["status"], 200);
  EXPECT_GT(r2["body"]["rolledUp"].get<int>(), 0);
  EXPECT_EQ(snapshot("day", {}), day);
  EXPECT_EQ(snapshot("month", {}), month);
  json kept = json::array();  // the hours after the cutoff, as before
  for (const auto& p : hour["dataPoints"]) {
    if (Ms(p["timestamp"].get<std::string>()) >= cutoff) kept.push_back(p);
  }
  EXPECT_EQ(h.Metrics(org, cutoff, now, "hour", metrics)["dataPoints"], kept);
  EXPECT_TRUE(h.Metrics(org, start, cutoff, "hour", metrics)["dataPoints"].empty());
  // Reports and quota answer from days, months and running totals: unaffected.
  EXPECT_EQ(Ok(h.Queries(org).GetQuotaStatus(org, now))["metrics"][0]["used"],
            month["totals"]["api_calls"]);

  // Validation of the command.
  EXPECT_EQ(h.Command(org, "usage.rollup", "roll-bad-1",
                      {{"metricType", "nope"}, {"cutoffTime", now}}, now)["status"],
            400);
  EXPECT_THAT(
      h.Command(org, "usage.rollup", "roll-bad-2", {{"metricType", "*"}, {"cutoffTime", now + 1}},
                now)["body"]["error"]["message"]
          .get<std::string>(),
      HasSubstr("must not be in the future"));
  EXPECT_EQ(h.Command(org, "usage.rollup", "roll-bad-3",
                      {{"metricType", "*"}, {"cutoffTime", now}, {"granularities", {"month"}}},
                      now)["status"],
            400);
}

TEST(UsageRollup, LateEventAfterRollupStillCountsInCoarserBuckets) {
  UsageHarness h;
  const std::string org = "org-l";
  const int64_t t = Ms("2024-03-10T12:30:00Z");
  h.Event(Ev("early", org, "api.call", t), t);
  h.Event(Ev("later", org, "api.call", t + 2 * kHourMs), t + 2 * kHourMs);
  json r = h.Command(org, "usage.rollup", "roll-late",
                     {{"metricType", "api_calls"}, {"cutoffTime", FormatTimestamp(t + kHourMs)}},
                     t + 2 * kHourMs);
  ASSERT_EQ(r["status"], 200);
  EXPECT_EQ(r["body"]["granularities"], json({"minute", "hour"}));  // those not kept forever
  // A late event in the rolled-up minute (and hour): it counts in the day and the month.
  h.Event(Ev("late", org, "api.call", t + 10 * kSecondMs), t + 3 * kHourMs);
  ASSERT_TRUE(h.Dlq().empty());
  const int64_t day = Ms("2024-03-10T00:00:00Z");
  EXPECT_EQ(h.Total(org, "api_calls", day, day + kDayMs, "day"), 3);
  EXPECT_EQ(
      h.Total(org, "api_calls", Ms("2024-03-01T00:00:00Z"), Ms("2024-04-01T00:00:00Z"), "month"),
      3);
  // The dropped minute and hour are not re-created with a partial figure.
  EXPECT_EQ(
      h.Total(org, "api_calls", Ms("2024-03-10T12:00:00Z"), Ms("2024-03-10T13:00:00Z"), "minute"),
      0);
  EXPECT_EQ(
      h.Total(org, "api_calls", Ms("2024-03-10T12:00:00Z"), Ms("2024-03-10T13:00:00Z"), "hour"), 0);
  // The minute and hour after the cutoff are kept and keep counting.
  h.Event(Ev("late-2", org, "api.call", t + 2 * kHourMs + 1), t + 3 * kHourMs);
  EXPECT_EQ(
      h.Total(org, "api_calls", Ms("2024-03-10T14:00:00Z"), Ms("2024-03-10T15:00:00Z"), "hour"), 2);
  EXPECT_EQ(
      h.Total(org, "api_calls", Ms("2024-03-10T14:30:00Z"), Ms("2024-03-10T14:31:00Z"), "minute"),
      2);
  // Quota counts it too.
  EXPECT_EQ(Ok(h.Queries(org).CheckQuota(org, "api_calls", 1, t + 3 * kHourMs))["used"], 4);
}

TEST(UsageRollup, ScheduledRollupFollowsTheRetentionPolicyOnStreamTime) {
  UsageHarness h;  // defaults: minutes 2 days, hours 90 days
  const std::string org = "org-s";
  const int64_t t = Ms("2024-03-01T10:15:00Z");
  h.Event(Ev("first", org, "api.call", t), t);
  EXPECT_EQ(
      h.Total(org, "api_calls", Ms("2024-03-01T10:00:00Z"), Ms("2024-03-01T11:00:00Z"), "minute"),
      1);
  // Stream time moves three days on (records' timestamps; no wall clock involved).
  const int64_t later = t + 3 * kDayMs;
  h.Event(Ev("second", org, "api.call", later), later);
  h.Event(Ev("third", org, "api.call", later + 2 * kMinuteMs), later + 2 * kMinuteMs);
  json minutes = h.Metrics(org, Ms("2024-03-01T10:00:00Z"), Ms("2024-03-01T11:00:00Z"), "minute",
                           {"api_calls"});
  EXPECT_TRUE(minutes["dataPoints"].empty());
  EXPECT_TRUE(minutes.contains("rolledUpBefore"));
  EXPECT_EQ(
      h.Total(org, "api_calls", Ms("2024-03-01T10:00:00Z"), Ms("2024-03-01T11:00:00Z"), "hour"), 1);
  EXPECT_EQ(
      h.Total(org, "api_calls", Ms("2024-03-04T10:00:00Z"), Ms("2024-03-04T11:00:00Z"), "minute"),
      2);
  EXPECT_EQ(
      h.Total(org, "api_calls", Ms("2024-03-01T00:00:00Z"), Ms("2024-04-01T00:00:00Z"), "month"),
      3);
  // Replaying the same records into a fresh application gives the same state.
  UsageHarness replay;
  replay.Event(Ev("first", org, "api.call", t), t);
  replay.Event(Ev("second", org, "api.call", later), later);
  replay.Event(Ev("third", org, "api.call", later + 2 * kMinuteMs), later + 2 * kMinuteMs);
  for (const char* g : {"minute", "hour"}) {
    EXPECT_EQ(replay.Metrics(org, Ms("2024-03-01T00:00:00Z"), Ms("2024-03-05T00:00:00Z"), g, {}),
              h.Metrics(org, Ms("2024-03-01T00:00:00Z"), Ms("2024-03-05T00:00:00Z"), g, {}));
  }
}

TEST(UsageRollup, RollupWithoutOrganizationCoversEveryOrganizationOfTheTask) {
  // POST /v1/usage/rollups names no organization: HTTP sends one copy per partition, and each
  // task rolls up all of its organizations (one partition here, so one task holds both).
  UsageOptions o;
  o.retention.minute_ms = 40 * kDayMs;
  UsageHarness h(o, 1);
  const int64_t t = Ms("2024-03-10T12:00:00Z");
  for (const char* org : {"org-x", "org-y"}) {
    for (int i = 0; i < 3; ++i)
      h.Event(Ev(std::string(org) + std::to_string(i), org, "api.call", t + i * kMinuteMs),
              t + kHourMs);
  }
  json r = h.Command("", "usage.rollup", "roll-all",
                     {{"metricType", "api_calls"},
                      {"cutoffTime", FormatTimestamp(t + kHourMs)},
                      {"granularities", {"minute"}}},
                     t + kHourMs);
  ASSERT_EQ(r["status"], 200) << r.dump();
  EXPECT_EQ(r["body"]["organizations"], 2);
  // Per org: 3 minute buckets x 2 entries (ungrouped, and by userId and resourceType).
  EXPECT_EQ(r["body"]["rolledUp"], 2 * 3 * 2);
  for (const char* org : {"org-x", "org-y"}) {
    EXPECT_EQ(h.Total(org, "api_calls", t, t + kHourMs, "minute"), 0) << org;
    EXPECT_EQ(h.Total(org, "api_calls", t, t + kHourMs, "hour"), 3) << org;
    EXPECT_EQ(h.Total(org, "events", t, t + kHourMs, "minute"), 3) << "other metrics untouched";
  }
}

}  // namespace
}  // namespace cm::usage::testing
