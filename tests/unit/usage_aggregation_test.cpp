// Usage aggregation: every aggregation kind, bucket boundaries, arrival order, queries.
#include <algorithm>
#include <map>
#include <random>
#include <tuple>

#include "processors/usage/aggregate.h"
#include "usage_test_support.h"

namespace cm::usage::testing {
namespace {

using ::testing::HasSubstr;

// The default catalog plus a max and a latest metric.
UsageOptions OptionsWithExtraMetrics() {
  json c = json::parse(DefaultCatalogJson());
  c["metrics"].push_back({{"metricType", "peak_latency_ms"},
                          {"eventTypes", {"api.call"}},
                          {"aggregation", "max"},
                          {"valueProperty", "metadata.latencyMs"},
                          {"onMissingValue", "skip"},
                          {"groupBy", {"userId"}}});
  c["metrics"].push_back({{"metricType", "last_gauge"},
                          {"eventTypes", {"gauge.reported"}},
                          {"aggregation", "latest"},
                          {"valueProperty", "quantity"}});
  UsageOptions o;
  o.catalog = Ok(ParseCatalog(c));
  return o;
}

json ByDims(const json& metrics) {
  json out = json::object();
  for (const auto& p : metrics["dataPoints"]) out[p["dimensions"].dump()] = p["value"];
  return out;
}

TEST(UsageAggregation, EveryAggregationKind) {
  UsageHarness h(OptionsWithExtraMetrics());
  const int64_t t = Ms("2024-03-10T12:00:00Z");
  const std::string org = "org-a";
  int n = 0;
  auto ev = [&](const std::string& type, int64_t ts, json extra) {
    h.Event(Ev("k-" + std::to_string(n++), org, type, ts, std::move(extra)), t);
  };
  ev("api.call", t - 50, {{"userId", "u1"}, {"metadata", {{"latencyMs", 12}}}});
  ev("api.call", t - 40, {{"userId", "u2"}, {"metadata", {{"latencyMs", 250.5}}}});
  ev("api.call", t - 30, {{"userId", "u1"}});  // no latency: skipped by the max metric only
  ev("storage.upload", t - 20, {{"quantity", 1000}, {"userId", "u1"}});
  ev("storage.upload", t - 10, {{"quantity", 500}, {"userId", "u2"}});
  ev("storage.delete", t - 5, {{"quantity", 300}, {"userId", "u1"}});
  ev("presence.joined", t - 4, {{"userId", "u1"}, {"resourceId", "doc-1"}});
  ev("presence.joined", t - 3, {{"userId", "u2"}, {"resourceId", "doc-1"}});
  ev("presence.joined", t - 2, {{"userId", "u1"}, {"resourceId", "doc-2"}});
  ev("presence.joined", t - 1, {{"userId", "u3"}, {"resourceId", "doc-2"}});
  // latest: by event time, whatever the arrival order; ties broken by eventId.
  h.Event(Ev("g-3", org, "gauge.reported", t - 100, {{"quantity", 7}}), t);
  h.Event(Ev("g-1", org, "gauge.reported", t - 300, {{"quantity", 5}}), t);
  h.Event(Ev("g-2", org, "gauge.reported", t - 200, {{"quantity", 9}}), t);
  ev("compute.used", t - 1, {{"quantity", 0.25}});
  ev("compute.used", t - 1, {{"quantity", 0.5}});
  ev("document.created", t - 1, {{"userId", "u9"}});
  ASSERT_TRUE(h.Dlq().empty());

  const int64_t d = Ms("2024-03-10T00:00:00Z");
  json m = h.Metrics(org, d, d + kDayMs, "day", {});
  json totals = m["totals"];
  EXPECT_EQ(totals["api_calls"], 3);
  EXPECT_EQ(totals["storage_bytes"], 1200);  // 1000 + 500 - 300
  EXPECT_EQ(totals["collaborators"], 3);     // u1, u2, u3
  EXPECT_EQ(totals["peak_latency_ms"], 250.5);
  EXPECT_EQ(totals["last_gauge"], 7);
  EXPECT_EQ(totals["compute_seconds"], 0.75);
  EXPECT_EQ(totals["documents"], 1);
  EXPECT_EQ(totals["active_users"], 4);  // u1, u2, u3, u9
  EXPECT_EQ(totals["events"], 16);

  EXPECT_EQ(ByDims(h.Metrics(org, d, d + kDayMs, "day", {"collaborators"}, {"resourceId"})),
            json({{R"({"resourceId":"doc-1"})", 2}, {R"({"resourceId":"doc-2"})", 2}}));
  EXPECT_EQ(ByDims(h.Metrics(org, d, d + kDayMs, "day", {"peak_latency_ms"}, {"userId"})),
            json({{R"({"userId":"u1"})", 12}, {R"({"userId":"u2"})", 250.5}}));
  EXPECT_EQ(ByDims(h.Metrics(org, d, d + kDayMs, "day", {"storage_bytes"}, {"userId"})),
            json({{R"({"userId":"u1"})", 700}, {R"({"userId":"u2"})", 500}}));

  // A tie on event time: the larger eventId is the latest.
  h.Event(Ev("g-9", org, "gauge.reported", t - 50, {{"quantity", 1}}), t);
  h.Event(Ev("g-8", org, "gauge.reported", t - 50, {{"quantity", 2}}), t);
  EXPECT_EQ(h.Total(org, "last_gauge", d, d + kDayMs, "day"), 1);
}

TEST(UsageAggregation, BucketBoundariesMonthLengthsAndLeapYears) {
  UsageOptions o;
  o.retention.minute_ms = o.retention.hour_ms = 400 * kDayMs;
  o.retention.day_ms = 400 * kDayMs;
  o.retention.month_ms = RetentionPolicy::kForever;
  UsageHarness h(o);
  const std::string org = "org-b";
  const std::vector<std::string> times = {
      "2024-03-10T12:00:59.999Z", "2024-03-10T12:01:00.000Z",  // minute edge
      "2024-03-10T12:59:59.999Z", "2024-03-10T13:00:00.000Z",  // hour edge
      "2024-03-10T23:59:59.999Z", "2024-03-11T00:00:00.000Z",  // day edge
      "2024-01-31T23:59:59.999Z", "2024-02-01T00:00:00.000Z",  // 31-day month
      "2024-02-29T12:00:00.000Z", "2024-03-01T00:00:00.000Z",  // leap February
      "2023-02-28T23:59:59.999Z", "2023-03-01T00:00:00.000Z",  // common February
      "2023-12-31T23:59:59.999Z", "2024-01-01T00:00:00.000Z",  // year edge
  };
  // Out of order; each record stamped with its event time.
  for (size_t i : {13, 0, 5, 2, 11, 8, 1, 7, 3, 12, 6, 9, 4, 10}) {
    h.Event(Ev("b-" + std::to_string(i), org, "api.call", Ms(times[i])), Ms(times[i]));
  }
  ASSERT_TRUE(h.Dlq().empty());
  auto series = [&](const std::string& from, const std::string& to, const std::string& g) {
    std::map<std::string, int> out;
    const json m = h.Metrics(org, Ms(from), Ms(to), g, {"api_calls"});  // outlives the loop
    for (const auto& p : m["dataPoints"]) {
      out[p["timestamp"]] = p["value"].get<int>();
    }
    return out;
  };
  using S = std::map<std::string, int>;
  EXPECT_EQ(series("2024-03-10T12:00:00Z", "2024-03-10T12:02:00Z", "minute"),
            (S{{"2024-03-10T12:00:00.000Z", 1}, {"2024-03-10T12:01:00.000Z", 1}}));
  EXPECT_EQ(series("2024-03-10T12:00:00Z", "2024-03-10T14:00:00Z", "hour"),
            (S{{"2024-03-10T12:00:00.000Z", 3}, {"2024-03-10T13:00:00.000Z", 1}}));
  EXPECT_EQ(series("2024-03-10T00:00:00Z", "2024-03-12T00:00:00Z", "day"),
            (S{{"2024-03-10T00:00:00.000Z", 5}, {"2024-03-11T00:00:00.000Z", 1}}));
  EXPECT_EQ(series("2023-01-01T00:00:00Z", "2024-04-01T00:00:00Z", "month"),
            (S{{"2023-02-01T00:00:00.000Z", 1},
               {"2023-03-01T00:00:00.000Z", 1},
               {"2023-12-01T00:00:00.000Z", 1},
               {"2024-01-01T00:00:00.000Z", 2},
               {"2024-02-01T00:00:00.000Z", 2},
               {"2024-03-01T00:00:00.000Z", 7}}));
  // Feb 29 2024 is its own day bucket; months have their calendar lengths.
  EXPECT_EQ(series("2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z", "day"),
            (S{{"2024-02-29T00:00:00.000Z", 1}}));
  EXPECT_EQ(BucketEnd(Granularity::kMonth, Ms("2024-02-01T00:00:00Z")), Ms("2024-03-01T00:00:00Z"));
  EXPECT_EQ(BucketEnd(Granularity::kMonth, Ms("2024-02-01T00:00:00Z")) - Ms("2024-02-01T00:00:00Z"),
            29 * kDayMs);
  EXPECT_EQ(BucketEnd(Granularity::kMonth, Ms("2023-02-01T00:00:00Z")) - Ms("2023-02-01T00:00:00Z"),
            28 * kDayMs);
  EXPECT_EQ(BucketEnd(Granularity::kMonth, Ms("2023-12-01T00:00:00Z")), Ms("2024-01-01T00:00:00Z"));
  EXPECT_EQ(BucketStart(Granularity::kMonth, Ms("2024-02-29T23:59:59.999Z")),
            Ms("2024-02-01T00:00:00Z"));
  EXPECT_EQ(BucketStart(Granularity::kMonth, Ms("2100-03-01T00:00:00Z") - 1),
            Ms("2100-02-01T00:00:00Z"));
  EXPECT_EQ(DaysInMonth(2100, 2), 28u);  // not a leap year
  EXPECT_EQ(DaysInMonth(2000, 2), 29u);
}

TEST(UsageAggregation, HalfOpenRangesAndQueryValidation) {
  UsageHarness h;
  const std::string org = "org-c";
  const int64_t t = Ms("2024-03-10T12:00:00Z");
  h.Event(Ev("a", org, "api.call", t - 1), t);  // last ms before the range
  h.Event(Ev("b", org, "api.call", t), t);      // first ms of the range
  h.Event(Ev("c", org, "api.call", t + kHourMs - 1), t + kHourMs);
  h.Event(Ev("d", org, "api.call", t + kHourMs), t + kHourMs);  // = endTime: excluded
  json m = h.Metrics(org, t, t + kHourMs, "hour", {"api_calls"});
  EXPECT_EQ(m["totals"]["api_calls"], 2);
  ASSERT_EQ(m["dataPoints"].size(), 1u);
  EXPECT_EQ(m["startTime"], "2024-03-10T12:00:00.000Z");
  EXPECT_EQ(m["endTime"], "2024-03-10T13:00:00.000Z");
  EXPECT_EQ(m["granularity"], "hour");
  EXPECT_EQ(m["organizationId"], org);
  // An empty range of an unknown organization is zero, not an error.
  EXPECT_EQ(h.Metrics("nobody", t, t + kHourMs, "hour", {"api_calls"})["totals"]["api_calls"], 0);

  auto q = h.Queries(org);
  auto bad = [&](AggregationQuery query, const std::string& why) {
    auto r = q.GetAggregatedMetrics(org, query);
    ASSERT_FALSE(r.ok()) << why;
    EXPECT_EQ(r.status().code(), state::Status::Code::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(why));
  };
  bad({t, t, Granularity::kHour, {"api_calls"}, {}}, "endTime must be after startTime");
  bad({t + kHourMs, t, Granularity::kHour, {"api_calls"}, {}}, "endTime must be after startTime");
  bad({t + kMinuteMs, t + kHourMs, Granularity::kHour, {"api_calls"}, {}},
      "not on a hour boundary");
  bad({t, t + kDayMs, Granularity::kMonth, {"api_calls"}, {}}, "not on a month boundary");
  bad({t, t + kHourMs, Granularity::kHour, {"bogus"}, {}}, "unknown metricType 'bogus'");
  bad({t, t + kHourMs, Granularity::kHour, {"api_calls"}, {"resourceId"}},
      "cannot be grouped by 'resourceId'");
  bad({t, t + kHourMs, Granularity::kHour, {"active_users"}, {"userId"}}, "allowed: none");
  bad({0, 400 * kDayMs, Granularity::kMinute, {"api_calls"}, {}}, "more than 100000 buckets");

  // HTTP query parameters.
  auto parsed = Ok(ParseAggregationQuery(
      std::map<std::string, std::string>{{"startTime", "2024-03-10T12:00:00Z"},
                                         {"endTime", "1710075600000"},
                                         {"granularity", "hour"},
                                         {"metricTypes", "api_calls,events"},
                                         {"dimensions", "userId"}}));
  EXPECT_EQ(parsed.start_time, t);
  EXPECT_EQ(parsed.end_time, t + kHourMs);
  EXPECT_EQ(parsed.metric_types, (std::vector<std::string>{"api_calls", "events"}));
  EXPECT_EQ(parsed.dimensions, (std::vector<std::string>{"userId"}));
  EXPECT_THAT(
      ParseAggregationQuery(std::map<std::string, std::string>{
                                {"startTime", "x"}, {"endTime", "1"}, {"granularity", "hour"}})
          .status()
          .message(),
      HasSubstr("startTime"));
  EXPECT_THAT(
      ParseAggregationQuery(std::map<std::string, std::string>{
                                {"startTime", "1"}, {"endTime", "2"}, {"granularity", "week"}})
          .status()
          .message(),
      HasSubstr("'week' is not minute, hour, day or month"));
}

struct RawEvent {
  std::string id;
  int64_t ts;
  std::string type;
  std::optional<std::string> user;
  std::optional<std::string> resource_type;
  double quantity;
};

std::vector<RawEvent> RandomEvents(uint32_t seed, int count, int64_t start, int64_t span) {
  std::mt19937_64 rng(seed);
  const std::vector<std::string> types = {"api.call",       "api.call",     "storage.upload",
                                          "storage.delete", "compute.used", "document.created"};
  std::vector<RawEvent> out;
  for (int i = 0; i < count; ++i) {
    RawEvent e;
    e.id = "rnd-" + std::to_string(i);
    e.ts = start + static_cast<int64_t>(rng() % static_cast<uint64_t>(span));
    e.type = types[rng() % types.size()];
    if (rng() % 10 != 0) e.user = "u" + std::to_string(rng() % 7);
    int rt = static_cast<int>(rng() % 3);
    if (rt == 1) e.resource_type = "document";
    if (rt == 2) e.resource_type = "file";
    e.quantity = static_cast<double>(rng() % 2000) / 2.0;  // halves: exact in binary
    out.push_back(e);
  }
  return out;
}

void Pipe(UsageHarness& h, const std::string& org, const std::vector<RawEvent>& events,
          int64_t record_ts) {
  for (const auto& e : events) {
    json extra = {{"quantity", e.quantity}};
    if (e.user) extra["userId"] = *e.user;
    if (e.resource_type) extra["resourceType"] = *e.resource_type;
    h.Event(Ev(e.id, org, e.type, e.ts, extra), record_ts);
  }
}

// (timestamp, metric, dimensions) -> value, from a query and from the raw events.
using Points = std::map<std::tuple<std::string, std::string, std::string>, double>;

Points FromQuery(const json& m) {
  Points p;
  for (const auto& d : m["dataPoints"])
    p[{d["timestamp"], d["metricType"], d["dimensions"].dump()}] = d["value"].get<double>();
  return p;
}

Points BruteForce(const std::vector<RawEvent>& events, const std::string& metric, Granularity g,
                  const std::vector<std::string>& dims, int64_t from, int64_t to, double* total) {
  Points p;
  *total = 0;
  for (const auto& e : events) {
    if (e.ts < from || e.ts >= to) continue;
    double v = 0;
    if (metric == "api_calls" && e.type == "api.call")
      v = 1;
    else if (metric == "events")
      v = 1;
    else if (metric == "storage_bytes" && e.type == "storage.upload")
      v = e.quantity;
    else if (metric == "storage_bytes" && e.type == "storage.delete")
      v = -e.quantity;
    else if (metric == "compute_seconds" && e.type == "compute.used")
      v = e.quantity;
    else
      continue;
    json d = json::object();
    for (const auto& dim : dims) {
      const auto& val = dim == "userId" ? e.user : e.resource_type;
      d[dim] = val ? json(*val) : json(nullptr);
    }
    p[{FormatTimestamp(BucketStart(g, e.ts)), metric, d.dump()}] += v;
    *total += v;
  }
  return p;
}

TEST(UsageAggregation, RandomEventsMatchABruteForceSumAtEveryGranularity) {
  UsageOptions o;
  o.retention.minute_ms = 40 * kDayMs;  // keep this test's minutes
  UsageHarness h(o);
  const std::string org = "org-r";
  const int64_t start = Ms("2024-02-28T00:00:00Z");  // over the leap day into March
  const int64_t span = 3 * kDayMs;
  auto events = RandomEvents(20240610, 1500, start, span);
  auto shuffled = events;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(99));
  Pipe(h, org, shuffled, start + span + kHourMs);
  ASSERT_TRUE(h.Dlq().empty());

  const std::vector<std::string> metrics = {"api_calls", "storage_bytes", "compute_seconds",
                                            "events"};
  const std::vector<std::vector<std::string>> groupings = {
      {}, {"userId"}, {"resourceType", "userId"}};
  for (Granularity g : kGranularities) {
    int64_t from = g == Granularity::kMonth ? Ms("2024-02-01T00:00:00Z")
                                            : start + (g == Granularity::kDay ? kDayMs : 0);
    int64_t to = g == Granularity::kMonth
                     ? Ms("2024-04-01T00:00:00Z")
                     : start + span - (g == Granularity::kMinute ? kHourMs : 0);
    for (const auto& dims : groupings) {
      json m = h.Metrics(org, from, to, GranularityName(g), metrics, dims);
      Points expected;
      for (const auto& metric : metrics) {
        double total = 0;
        Points p = BruteForce(events, metric, g, dims, from, to, &total);
        expected.insert(p.begin(), p.end());
        EXPECT_EQ(m["totals"][metric].get<double>(), total) << metric << " " << GranularityName(g);
        // Grouped data points add up to the ungrouped total.
        double sum = 0;
        for (const auto& d : m["dataPoints"]) {
          if (d["metricType"] == metric) sum += d["value"].get<double>();
        }
        EXPECT_EQ(sum, total) << metric << " " << GranularityName(g) << " " << json(dims).dump();
      }
      // A bucket whose events cancel out (storage uploads minus deletes = 0) is still listed.
      EXPECT_EQ(FromQuery(m), expected) << GranularityName(g) << " " << json(dims).dump();
    }
  }
}

TEST(UsageAggregation, ArrivalOrderDoesNotChangeAnyFigure) {
  auto events = RandomEvents(7, 600, Ms("2024-03-09T00:00:00Z"), 2 * kDayMs);
  std::vector<json> presence;
  for (int i = 0; i < 200; ++i) {
    presence.push_back(Ev("p-" + std::to_string(i), "org-o", "presence.joined",
                          Ms("2024-03-09T00:00:00Z") + i * 7 * kMinuteMs,
                          {{"userId", "u" + std::to_string(i % 37)},
                           {"resourceId", "doc-" + std::to_string(i % 5)}}));
  }
  UsageHarness forward, backward;
  const int64_t now = Ms("2024-03-11T01:00:00Z");
  Pipe(forward, "org-o", events, now);
  for (const auto& p : presence) forward.Event(p, now);
  auto reversed = events;
  std::reverse(reversed.begin(), reversed.end());
  for (auto it = presence.rbegin(); it != presence.rend(); ++it) backward.Event(*it, now);
  Pipe(backward, "org-o", reversed, now);
  for (const char* g : {"minute", "hour", "day", "month"}) {
    int64_t from =
        std::string(g) == "month" ? Ms("2024-03-01T00:00:00Z") : Ms("2024-03-09T00:00:00Z");
    int64_t to =
        std::string(g) == "month" ? Ms("2024-04-01T00:00:00Z") : Ms("2024-03-11T00:00:00Z");
    EXPECT_EQ(forward.Metrics("org-o", from, to, g, {}), backward.Metrics("org-o", from, to, g, {}))
        << g;
    EXPECT_EQ(forward.Metrics("org-o", from, to, g, {"collaborators"}, {"resourceId"}),
              backward.Metrics("org-o", from, to, g, {"collaborators"}, {"resourceId"}))
        << g;
  }
  EXPECT_EQ(forward.Metrics("org-o", Ms("2024-03-01T00:00:00Z"), Ms("2024-04-01T00:00:00Z"),
                            "month", {"collaborators"})["totals"]["collaborators"],
            37);
}

TEST(UsageAggregation, UniqueCountsMergeAcrossBuckets) {
  UsageHarness h;
  const std::string org = "org-u";
  const int64_t d1 = Ms("2024-03-08T00:00:00Z");
  const int64_t now = Ms("2024-03-10T00:00:00Z");
  for (int i = 0; i < 100; ++i) {  // day 1: users 0..99; day 2: users 50..149
    h.Event(Ev("j1-" + std::to_string(i), org, "presence.joined", d1 + i * kMinuteMs,
               {{"userId", "user-" + std::to_string(i)}}),
            now);
    h.Event(Ev("j2-" + std::to_string(i), org, "presence.joined", d1 + kDayMs + i * kMinuteMs,
               {{"userId", "user-" + std::to_string(i + 50)}}),
            now);
  }
  json days = h.Metrics(org, d1, d1 + 2 * kDayMs, "day", {"collaborators", "active_users"});
  ASSERT_EQ(days["dataPoints"].size(), 4u);
  for (const auto& p : days["dataPoints"]) EXPECT_EQ(p["value"], 100) << p.dump();
  // The union, not the sum of the days (200): 150 distinct users, within the HyperLogLog error
  // (linear counting at this size: about +-1).
  const json union_estimate = days["totals"]["collaborators"];
  EXPECT_NEAR(union_estimate.get<double>(), 150, 2);
  EXPECT_EQ(days["totals"]["active_users"], union_estimate);
  // Registers merge exactly, so months and hours give the very same estimate.
  EXPECT_EQ(h.Total(org, "collaborators", Ms("2024-03-01T00:00:00Z"), Ms("2024-04-01T00:00:00Z"),
                    "month"),
            union_estimate);
  EXPECT_EQ(h.Total(org, "collaborators", d1, d1 + 2 * kDayMs, "hour"), union_estimate);
}

// Issue 14: no aggregate overflows at the int64 and double edges. Sums are 128-bit nano-units,
// so 10,000 events of the largest quantity (1e19 in all, past INT64_MAX) stay exact through
// merges and the changelog encoding, and the smallest fractions add up exactly.
TEST(UsageAggregation, SumsPastInt64AndTinyFractionsStayExact) {
  Aggregate big;
  for (int i = 0; i < 10'000; ++i)
    big.AddEvent(Aggregation::kSum, kMaxQuantity, "", i, "e" + std::to_string(i));
  EXPECT_GT(big.Value(Aggregation::kSum), static_cast<double>(INT64_MAX));
  EXPECT_EQ(big.Value(Aggregation::kSum), 1e19);
  Aggregate twice = big;
  twice.Merge(Aggregation::kSum, big);
  EXPECT_EQ(twice.Value(Aggregation::kSum), 2e19);
  auto decoded = Aggregate::Decode(Aggregation::kSum, twice.Encode(Aggregation::kSum));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->Value(Aggregation::kSum), 2e19);
  EXPECT_EQ(decoded->events, 20'000u);

  Aggregate tiny;
  for (int i = 0; i < 1'000; ++i) tiny.AddEvent(Aggregation::kSum, 0.001, "", i, "t");
  EXPECT_EQ(tiny.Value(Aggregation::kSum), 1.0);  // a double sum gives 1.0000000000000007

  Aggregate max;
  max.AddEvent(Aggregation::kMax, kMaxQuantity, "", 1, "a");
  max.AddEvent(Aggregation::kMax, 0, "", 2, "b");
  auto max_decoded = Aggregate::Decode(Aggregation::kMax, max.Encode(Aggregation::kMax));
  ASSERT_TRUE(max_decoded.has_value());
  EXPECT_EQ(max_decoded->Value(Aggregation::kMax), kMaxQuantity);
}

// Found by fuzz_usage_store_values: merging two sums decoded from a corrupted changelog
// overflowed __int128 (undefined behaviour; in practice a huge positive sum became negative).
TEST(UsageAggregation, SumsSaturateInsteadOfWrapping) {
  Aggregate big;
  big.events = 1;
  big.sum = static_cast<Nanos>(~static_cast<unsigned __int128>(0) >> 2) + 1;  // 2^126
  auto decoded = Aggregate::Decode(Aggregation::kSum, big.Encode(Aggregation::kSum));
  ASSERT_TRUE(decoded);
  Aggregate merged = *decoded;
  merged.Merge(Aggregation::kSum, *decoded);
  merged.Merge(Aggregation::kSum, *decoded);
  EXPECT_GT(merged.sum, decoded->sum);
  EXPECT_GT(merged.Value(Aggregation::kSum), 0);
  merged.AddEvent(Aggregation::kSum, 1e15, "", 0, "e");
  EXPECT_GT(merged.sum, decoded->sum);
}

}  // namespace
}  // namespace cm::usage::testing
