// Usage ingestion: validation, CloudEvents mapping, timestamps, dedup.
#include "processors/usage/usage_event.h"
#include "usage_test_support.h"

namespace cm::usage::testing {
namespace {

using ::testing::HasSubstr;

const int64_t kNow = Ms("2024-03-10T12:00:00Z");

TEST(UsageIngest, EachInvalidEventGoesToDlqWithItsReason) {
  UsageHarness h;
  struct Case {
    std::string key;
    std::string bytes;
    std::string reason;
  };
  const json good = Ev("e-ok", "org-a", "api.call", kNow);
  auto with = [&](const char* field, json value) {
    json e = good;
    e[field] = value;
    return e.dump();
  };
  auto without = [&](const char* field) {
    json e = good;
    e.erase(field);
    return e.dump();
  };
  // 70,000 nested arrays in metadata: a valid event whose serialization once overflowed the
  // stack (issue 14).
  std::string deep_metadata = with("metadata", {{"a", "Q"}});
  deep_metadata.replace(deep_metadata.find("\"Q\""), 3,
                        std::string(70'000, '[') + std::string(70'000, ']'));
  std::vector<Case> cases = {
      {"org-a", "{not json", "not valid JSON"},
      {"org-a", deep_metadata, "nested deeper than 32"},
      // Accepted once, then no route could read it back (issue 14, case 8).
      {"org/a", with("organizationId", "org/a"), "organizationId must not contain '/'"},
      {"org\na", with("organizationId", "org\na"),
       "organizationId must not contain '/' or control"},
      // Larger than an event may be: refused as a client error, never half-appended (issue 14).
      {"org-a", with("metadata", {{"blob", std::string(UsageLimits{}.max_event_bytes, 'x')}}),
       "larger than 65536 bytes"},
      {"org-a", without("eventId"), "eventId is required"},
      {"org-a", with("eventId", ""), "eventId must not be empty"},
      {"org-a", with("eventId", 42), "eventId must be a string"},
      {"org-a", without("organizationId"), "organizationId is required"},
      {"org-a", without("eventType"), "eventType is required"},
      {"org-a", with("quantity", -1), "quantity must be >= 0"},
      {"org-a", with("quantity", "NaN"), "quantity must be a finite number"},
      {"org-a", with("quantity", 1e16), "at most 1e15"},
      // A large wrong value is quoted in 64 bytes, not echoed whole.
      {"org-a", with("quantity", std::string(60'000, '9')), "(60002 bytes)"},
      {"org-a", with("timestamp", "10/03/2024 12:00"), "is not ISO-8601"},
      {"org-a", with("timestamp", "2024-03-10T12:00:00"), "is not ISO-8601"},  // no zone
      {"org-a", with("timestamp", "2023-02-29T00:00:00Z"), "not a valid calendar date"},
      {"org-a", with("timestamp", FormatTimestamp(kNow - 35 * kDayMs - 1)),
       "more than 35 days before"},
      {"org-a", with("timestamp", FormatTimestamp(kNow + 5 * kMinuteMs + 1)),
       "more than 5 minutes after"},
      {"org-a", with("metadata", json::array()), "metadata must be a JSON object"},
      {"org-a", with("userId", 7), "userId must be a string"},
      {"org-b", good.dump(), "does not match the record key"},
      {"org-a", with("eventType", "storage.upload"), "quantity is required for storage.upload"},
      {"org-a", Ev("e-p", "org-a", "presence.joined", kNow).dump(),
       "userId is required for presence.joined"},
      {"org-a",
       Ev("e-s", "org-a", "billing.subscription_changed", kNow,
          {{"metadata", {{"plan", "platinum"}}}})
           .dump(),
       "unknown plan 'platinum'"},
  };
  for (const auto& c : cases) h.RawEvent(c.key, c.bytes, kNow);
  auto dlq = h.Dlq();
  ASSERT_EQ(dlq.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_THAT(Reason(dlq[i]), HasSubstr(cases[i].reason))
        << "case " << i << ": " << cases[i].bytes;
    EXPECT_LT(Reason(dlq[i]).size(), 512u) << "case " << i;
    EXPECT_EQ(dlq[i].value, cases[i].bytes) << "the DLQ keeps the original bytes";
  }
  // Nothing was counted, and the task went on: a valid event still counts.
  h.Event(good, kNow);
  EXPECT_TRUE(h.Dlq().empty());
  EXPECT_EQ(
      h.Total("org-a", "events", Ms("2024-03-10T00:00:00Z"), Ms("2024-03-11T00:00:00Z"), "day"), 1);
}

TEST(UsageIngest, TimeBoundsAreInclusiveAndMeasuredFromTheRecordTimestamp) {
  UsageHarness h;
  // Exactly 35 days old and exactly 5 minutes ahead of the record's timestamp: accepted.
  h.Event(Ev("old", "org-a", "api.call", kNow - 35 * kDayMs), kNow);
  h.Event(Ev("ahead", "org-a", "api.call", kNow + 5 * kMinuteMs), kNow);
  // The same old event appended a day later is judged by that record's timestamp: refused.
  h.Event(Ev("old-2", "org-a", "api.call", kNow - 35 * kDayMs), kNow + kDayMs);
  auto dlq = h.Dlq();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_THAT(Reason(dlq[0]), HasSubstr("more than 35 days before 2024-03-11T12:00:00.000Z"));
  EXPECT_EQ(h.Total("org-a", "api_calls", Ms("2024-01-01T00:00:00Z"), Ms("2024-04-01T00:00:00Z"),
                    "month"),
            2);

  // HTTP validates with the same function before appending, and gets the same reasons.
  auto r =
      ParseUsageEvent(Ev("x", "org-a", "api.call", kNow + 6 * kMinuteMs), kNow, &DefaultCatalog());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), state::Status::Code::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("more than 5 minutes after"));
  // An event without a timestamp happens at "now".
  json no_ts = Ev("y", "org-a", "api.call", kNow);
  no_ts.erase("timestamp");
  EXPECT_EQ(Ok(ParseUsageEvent(no_ts, kNow + 123, &DefaultCatalog())).timestamp_ms, kNow + 123);
  // Epoch milliseconds work as well as ISO-8601 with offsets and fractions.
  json epoch = Ev("z", "org-a", "api.call", kNow);
  epoch["timestamp"] = kNow - 1000;
  EXPECT_EQ(Ok(ParseUsageEvent(epoch, kNow)).timestamp_ms, kNow - 1000);
}

TEST(UsageIngest, TimestampFormats) {
  EXPECT_EQ(Ok(ParseTimestampString("2024-02-29T23:59:59.999Z")), Ms("2024-03-01T00:00:00Z") - 1);
  EXPECT_EQ(Ok(ParseTimestampString("2024-03-10T14:00:00+02:00")), Ms("2024-03-10T12:00:00Z"));
  EXPECT_EQ(Ok(ParseTimestampString("2024-03-10T06:30:00-0530")), Ms("2024-03-10T12:00:00Z"));
  EXPECT_EQ(Ok(ParseTimestampString("2024-03-10T12:00:00.123456789Z")),
            Ms("2024-03-10T12:00:00Z") + 123);
  EXPECT_EQ(Ok(ParseTimestampString("2024-03-10")), Ms("2024-03-10T00:00:00Z"));
  EXPECT_EQ(Ok(ParseTimestampString("1710072000000")), Ms("2024-03-10T12:00:00Z"));
  EXPECT_EQ(FormatTimestamp(Ms("2024-03-10T12:00:00.5Z")), "2024-03-10T12:00:00.500Z");
  for (const char* bad :
       {"", "2024-13-01T00:00:00Z", "2024-03-10T24:00:00Z", "2024-03-10T12:00:00.Z",
        "2024-03-10T12:00Z", "1969-12-31T23:59:59Z", "yesterday", "2024-03-10T12:00:00+25:00"}) {
    EXPECT_FALSE(ParseTimestampString(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseTimestamp(json(1.5)).ok());
  EXPECT_FALSE(ParseTimestamp(json(true)).ok());
}

// Found by fuzz_usage_event: a timestamp of 1e120 (a JSON number too large for an integer)
// was converted to int64_t before its range was checked (undefined behaviour, reported by
// UBSan under the asan preset) and refused as "not a whole number".
TEST(UsageIngest, AFloatTimestampOutOfRangeIsRefusedAsOutOfRange) {
  for (double t : {1e120, 9.3e18, -1.0, 253402300800000.0}) {
    auto r = ParseTimestamp(json(t));
    ASSERT_FALSE(r.ok()) << t;
    EXPECT_THAT(r.status().message(), HasSubstr("before 1970 or after 9999")) << t;
  }
  EXPECT_EQ(Ok(ParseTimestamp(json(1710072000000.0))), Ms("2024-03-10T12:00:00Z"));
  auto e = ParseUsageEvent(
      std::string_view(R"({"eventId":"e","organizationId":"o","eventType":"api.call","timestamp":)"
                       "1714568888888888888888888888888888888888888888888888888888888888888}"),
      Ms("2024-05-01T12:00:00Z"));
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("before 1970 or after 9999"));
}

TEST(UsageIngest, CloudEventsEnvelopeIsMappedOntoUsageEvent) {
  UsageHarness h;
  json ce = {
      {"specversion", "1.0"},
      {"id", "ce-1"},
      {"type", "api.call"},
      {"source", "//cloudmatrix/api-gateway"},
      {"subject", "doc-9"},
      {"time", "2024-03-10T11:59:00Z"},
      {"datacontenttype", "application/json"},
      {"data", {{"organizationId", "org-a"}, {"userId", "u1"}, {"resourceType", "document"}}}};
  auto e = Ok(ParseUsageEvent(ce, kNow, &DefaultCatalog()));
  EXPECT_EQ(e.event_id, "ce-1");
  EXPECT_EQ(e.event_type, "api.call");
  EXPECT_EQ(e.organization_id, "org-a");
  EXPECT_EQ(e.user_id, "u1");
  EXPECT_EQ(e.resource_id, "doc-9");
  EXPECT_EQ(e.resource_type, "document");
  EXPECT_EQ(e.timestamp_ms, Ms("2024-03-10T11:59:00Z"));
  EXPECT_EQ(e.metadata["source"], "//cloudmatrix/api-gateway");
  EXPECT_EQ(e.ToJson()["timestamp"], "2024-03-10T11:59:00.000Z");

  h.Event(ce, kNow, "org-a");
  // The organization can also come from the extension attribute.
  json ext = ce;
  ext["id"] = "ce-2";
  ext["data"].erase("organizationId");
  ext["organizationid"] = "org-a";
  h.Event(ext, kNow, "org-a");
  json no_source = ce;
  no_source.erase("source");
  h.Event(no_source, kNow, "org-a");
  json binary = ce;
  binary["id"] = "ce-3";
  binary["data_base64"] = "AAAA";
  h.Event(binary, kNow, "org-a");
  auto dlq = h.Dlq();
  ASSERT_EQ(dlq.size(), 2u);
  EXPECT_THAT(Reason(dlq[0]), HasSubstr("CloudEvents source is required"));
  EXPECT_THAT(Reason(dlq[1]), HasSubstr("data_base64"));

  json m = h.Metrics("org-a", Ms("2024-03-10T11:00:00Z"), Ms("2024-03-10T12:00:00Z"), "hour",
                     {"api_calls"}, {"userId"});
  ASSERT_EQ(m["dataPoints"].size(), 1u);
  EXPECT_EQ(m["dataPoints"][0]["value"], 2);
  EXPECT_EQ(m["dataPoints"][0]["dimensions"], json({{"userId", "u1"}}));
  EXPECT_EQ(m["dataPoints"][0]["timestamp"], "2024-03-10T11:00:00.000Z");
}

TEST(UsageIngest, DuplicateEventIdCountsOnce) {
  UsageHarness h;
  json e = Ev("dup-1", "org-a", "storage.upload", kNow, {{"quantity", 100}, {"userId", "u1"}});
  h.Event(e, kNow);
  h.Event(e, kNow + 1000);  // a redelivery: silently ignored
  json changed = e;
  changed["quantity"] = 5000;
  h.Event(changed, kNow + 2000);  // same id, other content: refused, the first version counts
  auto dlq = h.Dlq();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_THAT(Reason(dlq[0]), HasSubstr("already recorded with different content"));
  const int64_t day = Ms("2024-03-10T00:00:00Z");
  EXPECT_EQ(h.Total("org-a", "storage_bytes", day, day + kDayMs, "day"), 100);
  EXPECT_EQ(h.Total("org-a", "events", day, day + kDayMs, "day"), 1);
  // The same eventId in another organization is another event.
  h.Event(Ev("dup-1", "org-b", "api.call", kNow), kNow);
  EXPECT_EQ(h.Total("org-b", "api_calls", day, day + kDayMs, "day"), 1);
}

TEST(UsageIngest, RedeliveryAfterRestartNeverChangesAFigure) {
  UsageHarness h;
  const int64_t day = Ms("2024-03-10T00:00:00Z");
  for (int i = 0; i < 5; ++i)
    h.Event(Ev("r-" + std::to_string(i), "org-a", "api.call", kNow + i), kNow + i);
  h.driver().Commit();
  // Processed but not committed when the "crash" happens: lost, and redelivered below.
  for (int i = 5; i < 8; ++i)
    h.Event(Ev("r-" + std::to_string(i), "org-a", "api.call", kNow + i), kNow + i);
  ASSERT_TRUE(h.driver().Restart().ok());
  EXPECT_EQ(h.Total("org-a", "api_calls", day, day + kDayMs, "day"), 5);
  // The source redelivers everything since an older offset: each event counts exactly once.
  for (int i = 0; i < 8; ++i)
    h.Event(Ev("r-" + std::to_string(i), "org-a", "api.call", kNow + i), kNow + i);
  EXPECT_EQ(h.Total("org-a", "api_calls", day, day + kDayMs, "day"), 8);
  h.driver().Commit();
  ASSERT_TRUE(h.driver().Restart().ok());
  for (int i = 0; i < 8; ++i)
    h.Event(Ev("r-" + std::to_string(i), "org-a", "api.call", kNow + i), kNow + i);
  EXPECT_EQ(h.Total("org-a", "api_calls", day, day + kDayMs, "day"), 8);
  EXPECT_TRUE(h.Dlq().empty());
  // Committed views (what HTTP reads) agree.
  auto views = UsageStoreViews::Committed(h.driver().TaskFor(kEvents, "org-a").state());
  AggregationQuery q{day, day + kDayMs, Granularity::kDay, {"api_calls"}, {}};
  EXPECT_EQ(
      Ok(UsageQueries(h.options(), views).GetAggregatedMetrics("org-a", q))["totals"]["api_calls"],
      8);
}

TEST(UsageIngest, DedupEntriesExpireOnlyAfterTheAcceptanceWindow) {
  UsageHarness h;
  h.Event(Ev("old-id", "org-a", "api.call", kNow), kNow);
  auto* dedup = h.driver().TaskFor(kEvents, "org-a").state().key_value_store(kDedupStore);
  ASSERT_TRUE(dedup->Get(keys::DedupKey("org-a", "old-id")).has_value());
  // 35 days later the entry is still there and the redelivery (still acceptable) is a duplicate.
  h.Event(Ev("old-id", "org-a", "api.call", kNow), kNow + 35 * kDayMs);
  EXPECT_TRUE(dedup->Get(keys::DedupKey("org-a", "old-id")).has_value());
  // Past 36 days of stream time it expires, and a redelivery is refused by the age bound.
  h.Event(Ev("tick", "org-a", "api.call", kNow + 36 * kDayMs + kMinuteMs),
          kNow + 36 * kDayMs + kMinuteMs);
  h.Event(Ev("tick2", "org-a", "api.call", kNow + 36 * kDayMs + 3 * kMinuteMs),
          kNow + 36 * kDayMs + 3 * kMinuteMs);
  EXPECT_FALSE(dedup->Get(keys::DedupKey("org-a", "old-id")).has_value());
  h.Event(Ev("old-id", "org-a", "api.call", kNow), kNow + 36 * kDayMs + 4 * kMinuteMs);
  auto dlq = h.Dlq();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_THAT(Reason(dlq[0]), HasSubstr("more than 35 days before"));
  EXPECT_EQ(h.Total("org-a", "api_calls", Ms("2024-03-01T00:00:00Z"), Ms("2024-05-01T00:00:00Z"),
                    "month"),
            3);
}

TEST(UsageIngest, BatchBodyForHttpIsAllOrNothing) {
  json batch = {
      {"events", {Ev("b1", "org-a", "api.call", kNow), Ev("b2", "org-a", "storage.upload", kNow)}}};
  auto r = ParseUsageEventBatch(batch.dump(), kNow, &DefaultCatalog());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("events[1]: quantity is required"));
  batch["events"][1]["quantity"] = 10;
  auto two = Ok(ParseUsageEventBatch(batch.dump(), kNow, &DefaultCatalog()));
  EXPECT_EQ(two.events.size(), 2u);
  EXPECT_TRUE(two.batch);
  auto one = Ok(ParseUsageEventBatch(Ev("one", "org-a", "api.call", kNow).dump(), kNow));
  EXPECT_EQ(one.events.size(), 1u);
  EXPECT_FALSE(one.batch);
  EXPECT_FALSE(ParseUsageEventBatch(R"({"events": []})", kNow).ok());
  // Both shapes in one body once took the top-level event and dropped the batch (issue 14).
  json both = Ev("top", "org-a", "api.call", kNow);
  both["events"] = {Ev("b3", "org-a", "api.call", kNow)};
  auto refused = ParseUsageEventBatch(both.dump(), kNow, &DefaultCatalog());
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("not both"));
}

// --- limits set by flags (README "Configuration"): each is enforced at its configured value ---

// `levels` nested objects: {"a":{"a":...{}}}. As an event's metadata, the event is levels + 1
// deep; inside a batch body, levels + 3.
json Nested(int levels) {
  json j = json::object();
  for (int i = 1; i < levels; ++i) j = json{{"a", std::move(j)}};
  return j;
}

UsageOptions WithLimits(UsageLimits limits) {
  UsageOptions o;
  o.limits = limits;
  return o;
}

TEST(UsageLimitsTest, TheDefaultsAreTheDocumentedOnes) {
  const UsageLimits d;
  EXPECT_EQ(d.max_event_bytes, 64u * 1024);
  EXPECT_EQ(d.max_batch_events, 1000u);
  EXPECT_EQ(d.max_json_depth, 32);
  EXPECT_EQ(d.max_id_bytes, 256u);
  EXPECT_EQ(d.max_query_buckets, 100'000);
  EXPECT_EQ(d.max_report_range_ms, 400 * kDayMs);
  EXPECT_TRUE(d.Validate().ok());
  for (auto bad : {UsageLimits{.max_event_bytes = 0}, UsageLimits{.max_batch_events = 0},
                   UsageLimits{.max_json_depth = 2}, UsageLimits{.max_json_depth = 65},
                   UsageLimits{.max_id_bytes = 0}, UsageLimits{.max_query_buckets = 0},
                   UsageLimits{.max_report_range_ms = -1}}) {
    EXPECT_FALSE(bad.Validate().ok());
    topology::TopologyBuilder b;
    EXPECT_FALSE(AddUsageTopology(b, WithLimits(bad)).ok()) << "the topology refuses them too";
  }
}

TEST(UsageLimitsTest, MaxBatchEventsRefusesOneMoreWhole) {
  const UsageLimits limits{.max_batch_events = 3};
  json batch = {{"events", json::array()}};
  for (int i = 0; i < 3; ++i)
    batch["events"].push_back(Ev("b" + std::to_string(i), "org-a", "api.call", kNow));
  EXPECT_EQ(
      Ok(ParseUsageEventBatch(batch.dump(), kNow, &DefaultCatalog(), {}, limits)).events.size(),
      3u);
  batch["events"].push_back(Ev("b3", "org-a", "api.call", kNow));
  auto r = ParseUsageEventBatch(batch.dump(), kNow, &DefaultCatalog(), {}, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), state::Status::Code::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("at most 3 events per request"));
  // The default takes the same 4 events.
  EXPECT_TRUE(ParseUsageEventBatch(batch.dump(), kNow, &DefaultCatalog()).ok());
}

TEST(UsageLimitsTest, MaxJsonDepthIsTheDepthOfTheWholeDocument) {
  const UsageLimits limits{.max_json_depth = 8};
  UsageHarness h(WithLimits(limits));
  // An event 8 deep (metadata 7) is accepted by the edge and by the processor; 9 deep is not.
  json ok = Ev("deep-8", "org-a", "api.call", kNow, {{"metadata", Nested(7)}});
  json deep = Ev("deep-9", "org-a", "api.call", kNow, {{"metadata", Nested(8)}});
  EXPECT_TRUE(
      ParseUsageEvent(std::string_view(ok.dump()), kNow, &DefaultCatalog(), {}, limits).ok());
  auto r = ParseUsageEvent(std::string_view(deep.dump()), kNow, &DefaultCatalog(), {}, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("nested deeper than 8 levels"));
  // A batch body adds two levels: metadata 5 deep is 8.
  json batch = {{"events", {Ev("b-8", "org-a", "api.call", kNow, {{"metadata", Nested(5)}})}}};
  EXPECT_TRUE(ParseUsageEventBatch(batch.dump(), kNow, &DefaultCatalog(), {}, limits).ok());
  batch["events"][0]["metadata"] = Nested(6);
  EXPECT_FALSE(ParseUsageEventBatch(batch.dump(), kNow, &DefaultCatalog(), {}, limits).ok());

  h.Event(ok, kNow);
  h.Event(deep, kNow);
  auto dlq = h.Dlq();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].value, deep.dump());
  EXPECT_THAT(Reason(dlq[0]), HasSubstr("nested deeper than 8 levels"));
  const int64_t day = Ms("2024-03-10T00:00:00Z");
  EXPECT_EQ(h.Total("org-a", "api_calls", day, day + kDayMs, "day"), 1);
  // With the default (32), the 9-deep event counts.
  UsageHarness d;
  d.Event(deep, kNow);
  EXPECT_TRUE(d.Dlq().empty());
}

TEST(UsageLimitsTest, MaxIdBytesBoundsEveryIdOfAnEventAndACommand) {
  const UsageLimits limits{.max_id_bytes = 16};
  UsageHarness h(WithLimits(limits));
  const std::string at(16, 'o'), over(17, 'o');
  EXPECT_TRUE(CheckOrganizationId(at, limits).ok());
  auto r = CheckOrganizationId(over, limits, "the organization in the path");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "the organization in the path is longer than 16 bytes");
  EXPECT_TRUE(CheckOrganizationId(over, UsageLimits{}).ok()) << "the default is 256";
  for (const char* field : {"eventId", "organizationId", "eventType", "userId", "resourceId"}) {
    json e = Ev("e-1", at, "api.call", kNow);
    e[field] = over;
    auto p = ParseUsageEvent(e, kNow, &DefaultCatalog(), {}, limits);
    ASSERT_FALSE(p.ok()) << field;
    EXPECT_THAT(p.status().message(), HasSubstr(std::string(field) + " is longer than 16 bytes"));
  }
  h.Event(Ev("e-at", at, "api.call", kNow), kNow);
  h.Event(Ev("e-over", over, "api.call", kNow), kNow);
  h.Command(at, kSetPlanCommand, std::string(17, 'c'), {{"plan", "pro"}}, kNow);
  auto dlq = h.Dlq();
  ASSERT_EQ(dlq.size(), 2u);
  EXPECT_THAT(Reason(dlq[0]), HasSubstr("organizationId is longer than 16 bytes"));
  EXPECT_THAT(Reason(dlq[1]), HasSubstr("commandId (a string of 1..16 bytes)"));
  const int64_t day = Ms("2024-03-10T00:00:00Z");
  EXPECT_EQ(h.Total(at, "api_calls", day, day + kDayMs, "day"), 1);
}

TEST(UsageLimitsTest, MaxEventBytesRefusesARecordOneByteOver) {
  const UsageLimits limits{.max_event_bytes = 1024};
  UsageHarness h(WithLimits(limits));
  // Events of exactly 1024 and 1025 bytes, padded in metadata.
  auto sized = [](const std::string& id, size_t bytes) {
    json e = Ev(id, "org-a", "api.call", kNow, {{"metadata", {{"pad", ""}}}});
    const size_t base = e.dump().size();
    e["metadata"]["pad"] = std::string(bytes - base, 'x');
    return e.dump();
  };
  const std::string at = sized("at", 1024), over = sized("over", 1025);
  ASSERT_EQ(at.size(), 1024u);
  ASSERT_EQ(over.size(), 1025u);
  h.RawEvent("org-a", at, kNow);
  h.RawEvent("org-a", over, kNow);
  auto dlq = h.Dlq();
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].value, over);
  EXPECT_THAT(Reason(dlq[0]), HasSubstr("event is larger than 1024 bytes"));
  const int64_t day = Ms("2024-03-10T00:00:00Z");
  EXPECT_EQ(h.Total("org-a", "api_calls", day, day + kDayMs, "day"), 1);
}

TEST(UsageLimitsTest, QueryRangesFollowTheConfiguredLimits) {
  UsageHarness h(WithLimits({.max_query_buckets = 24, .max_report_range_ms = 2 * kDayMs}));
  h.Event(Ev("e", "org-a", "api.call", kNow), kNow);
  const int64_t day = Ms("2024-03-10T00:00:00Z");
  EXPECT_EQ(h.Total("org-a", "api_calls", day, day + kDayMs, "hour"), 1);  // 24 hours
  AggregationQuery q{day, day + kDayMs + kHourMs, Granularity::kHour, {"api_calls"}, {}};
  auto r = h.Queries("org-a").GetAggregatedMetrics("org-a", q);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("more than 24 buckets"));
  // The same 25 hours are one or two buckets of a day.
  EXPECT_EQ(h.Total("org-a", "api_calls", day, day + 2 * kDayMs, "day"), 1);

  EXPECT_TRUE(h.Queries("org-a").GenerateUsageReport("org-a", day, day + 2 * kDayMs, kNow).ok());
  auto report =
      h.Queries("org-a").GenerateUsageReport("org-a", day, day + 2 * kDayMs + kMinuteMs, kNow);
  ASSERT_FALSE(report.ok());
  EXPECT_THAT(report.status().message(), HasSubstr("a report covers at most 2 days"));
}

}  // namespace
}  // namespace cm::usage::testing
