// Usage reports (billing arithmetic, CSV), the dashboard, the catalog, the topology options.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "usage_test_support.h"

namespace cm::usage::testing {
namespace {

using ::testing::HasSubstr;

UsageOptions MeteredOptions() {
  json c = json::parse(DefaultCatalogJson());
  c["plans"].push_back(
      {{"name", "metered"},
       {"displayName", "Metered"},
       {"basePrice", 19.99},
       {"currency", "EUR"},
       {"metrics",
        {{"api_calls", {{"limit", nullptr}, {"included", 10}, {"unitPrice", 0.5}}},
         {"compute_seconds",
          {{"limit", 100000}, {"included", 60}, {"unitPrice", 0.01}, {"pricePer", 60}}},
         {"storage_bytes", {{"included", 1000}, {"unitPrice", 2}, {"pricePer", 1000}}}}}});
  UsageOptions o;
  o.catalog = Ok(ParseCatalog(c));
  return o;
}

json LineItem(const json& report, const std::string& metric) {
  for (const auto& li : report["lineItems"]) {
    if (li["metricType"] == metric) return li;
  }
  return json();
}

TEST(UsageReport, BillingLineItemsAndCsv) {
  UsageHarness h(MeteredOptions());
  const std::string org = "org-bill";
  const int64_t march = Ms("2024-03-01T00:00:00Z");
  const int64_t april = Ms("2024-04-01T00:00:00Z");
  const int64_t now = Ms("2024-03-20T00:00:00Z");
  h.Command(org, "usage.set_plan", "plan", {{"plan", "metered"}}, march);
  for (int i = 0; i < 13; ++i)
    h.Event(Ev("api-" + std::to_string(i), org, "api.call", march + i * kHourMs), now);
  h.Event(Ev("cpu-1", org, "compute.used", march + kDayMs, {{"quantity", 100.25}}), now);
  h.Event(Ev("cpu-2", org, "compute.used", march + 2 * kDayMs, {{"quantity", 50.25}}), now);
  h.Event(Ev("api-feb", org, "api.call", Ms("2024-02-28T00:00:00Z")), now);  // another period
  h.Event(Ev("st-1", org, "storage.upload", Ms("2024-02-20T00:00:00Z"), {{"quantity", 1500}}), now);
  h.Event(Ev("st-2", org, "storage.upload", march + 3 * kDayMs, {{"quantity", 700}}), now);
  h.Event(Ev("st-3", org, "storage.delete", march + 4 * kDayMs, {{"quantity", 200}}), now);
  ASSERT_TRUE(h.Dlq().empty());

  auto q = h.Queries(org);
  json r = Ok(q.GenerateUsageReport(org, march, april, now));
  EXPECT_EQ(r["organizationId"], org);
  EXPECT_EQ(r["periodStart"], "2024-03-01T00:00:00.000Z");
  EXPECT_EQ(r["periodEnd"], "2024-04-01T00:00:00.000Z");
  EXPECT_EQ(r["generatedAt"], FormatTimestamp(now));
  EXPECT_EQ(r["plan"], "metered");
  json api = LineItem(r, "api_calls");
  EXPECT_EQ(api["quantity"], 13);
  EXPECT_EQ(api["includedQuantity"], 10);
  EXPECT_EQ(api["overageQuantity"], 3);
  EXPECT_EQ(api["unitPrice"], 0.5);
  EXPECT_EQ(api["amount"], 1.5);
  EXPECT_TRUE(api["limit"].is_null());
  json cpu = LineItem(r, "compute_seconds");
  EXPECT_EQ(cpu["quantity"], 150.5);
  EXPECT_EQ(cpu["overageQuantity"], 90.5);
  EXPECT_EQ(cpu["pricePer"], 60);
  EXPECT_EQ(cpu["amount"], 0.02);  // 90.5 / 60 * 0.01 = 0.01508.. -> 0.02
  json storage = LineItem(r, "storage_bytes");
  EXPECT_EQ(storage["quantity"], 2000) << "lifetime metric: the total at the period's end";
  EXPECT_EQ(storage["overageQuantity"], 1000);
  EXPECT_EQ(storage["amount"], 2);
  EXPECT_EQ(r["lineItems"].size(), 3u) << "only the metrics the plan prices";
  EXPECT_EQ(r["summary"]["basePrice"], 19.99);
  EXPECT_EQ(r["summary"]["usageCharges"], 3.52);
  EXPECT_EQ(r["summary"]["totalAmount"], 23.51);
  EXPECT_EQ(r["summary"]["currency"], "EUR");
  EXPECT_EQ(r["summary"]["metrics"]["api_calls"]["quantity"], 13);
  EXPECT_EQ(r["summary"]["metrics"]["events"]["quantity"], 17);  // March only

  // Deterministic id: the same period gives the same reportId, another period another.
  json again = Ok(q.GenerateUsageReport(org, march, april, now + kHourMs));
  EXPECT_EQ(again["reportId"], r["reportId"]);
  EXPECT_EQ(again["lineItems"], r["lineItems"]);
  json feb = Ok(q.GenerateUsageReport(org, Ms("2024-02-01T00:00:00Z"), march, now));
  EXPECT_NE(feb["reportId"], r["reportId"]);
  EXPECT_EQ(LineItem(feb, "api_calls")["quantity"], 1);
  EXPECT_EQ(feb["plan"], "free") << "the plan in force at the end of February";
  EXPECT_EQ(LineItem(feb, "storage_bytes")["quantity"], 1500);

  std::string csv = Ok(q.GenerateUsageReportCsv(org, march, april, now));
  std::vector<std::string> lines;
  std::istringstream in(csv);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 6u) << csv;
  EXPECT_EQ(lines[0],
            "reportId,organizationId,periodStart,periodEnd,plan,metricType,unit,quantity,"
            "includedQuantity,"
            "overageQuantity,unitPrice,pricePer,amount,currency");
  const std::string prefix = r["reportId"].get<std::string>() +
                             ",org-bill,2024-03-01T00:00:00.000Z,2024-04-01T00:00:00.000Z,metered,";
  EXPECT_EQ(lines[1], prefix + "api_calls,calls,13,10,3,0.5,1,1.5,EUR");
  EXPECT_EQ(lines[2], prefix + "storage_bytes,bytes,2000,1000,1000,2,1000,2,EUR");
  EXPECT_EQ(lines[3], prefix + "compute_seconds,seconds,150.5,60,90.5,0.01,60,0.02,EUR");
  EXPECT_EQ(lines[4], prefix + "base_price,,,,,,,19.99,EUR");
  EXPECT_EQ(lines[5], prefix + "total,,,,,,,23.51,EUR");

  EXPECT_EQ(q.GenerateUsageReport(org, april, march, now).status().code(),
            state::Status::Code::kInvalidArgument);
  EXPECT_EQ(q.GenerateUsageReport(org, march + 1, april, now).status().code(),
            state::Status::Code::kInvalidArgument);
  // An empty organization gets a report of zeros on the default plan.
  json empty = Ok(q.GenerateUsageReport("org-none", march, april, now));
  EXPECT_EQ(empty["plan"], "free");
  EXPECT_EQ(empty["summary"]["totalAmount"], 0);
  EXPECT_EQ(LineItem(empty, "api_calls")["quantity"], 0);
}

// An organization id a spreadsheet would run as a formula is written as text (issue 14): the
// cell gets a leading ', and is quoted where it holds a comma or quote as usual.
TEST(UsageReport, CsvCellsThatLookLikeFormulasAreWrittenAsText) {
  UsageHarness h;
  const int64_t march = Ms("2024-03-01T00:00:00Z");
  const int64_t april = Ms("2024-04-01T00:00:00Z");
  const int64_t now = Ms("2024-03-20T00:00:00Z");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"=HYPERLINK(\"http://x\")", "\"'=HYPERLINK(\"\"http://x\"\")\""},
      {"+1+1", "'+1+1"},
      {"-2+3", "'-2+3"},
      {"@SUM(A1)", "'@SUM(A1)"},
      {"\tcmd", "'\tcmd"},
      {"org-plain", "org-plain"}};
  for (const auto& [org, cell] : cases) {
    auto q = h.Queries(org);
    std::string csv = Ok(q.GenerateUsageReportCsv(org, march, april, now));
    std::string second_line = csv.substr(csv.find("\r\n") + 2);
    std::string after_id = second_line.substr(second_line.find(',') + 1);
    EXPECT_EQ(after_id.substr(0, cell.size() + 1), cell + ",") << org << "\n" << csv;
  }
}

TEST(UsageReport, DashboardTrendsTopListsAndRealtime) {
  UsageHarness h;
  const std::string org = "org-dash";
  const int64_t now = Ms("2024-03-20T12:30:00Z");
  int n = 0;
  auto ev = [&](const std::string& type, const std::string& at, json extra, int times = 1) {
    for (int i = 0; i < times; ++i)
      h.Event(Ev("d-" + std::to_string(n++), org, type, Ms(at), extra), now);
  };
  ev("api.call", "2024-03-18T10:00:00Z", {{"userId", "u1"}}, 5);
  ev("api.call", "2024-03-19T10:00:00Z", {{"userId", "u2"}}, 3);
  ev("api.call", "2024-03-20T09:00:00Z", {{"userId", "u3"}}, 1);
  ev("api.call", "2024-03-10T10:00:00Z", {{"userId", "u2"}}, 4);  // the week before
  json doc = {{"resourceType", "document"}};
  auto on = [&](const std::string& d, const std::string& u) {
    json e = doc;
    e["resourceId"] = d;
    e["userId"] = u;
    return e;
  };
  ev("document.viewed", "2024-03-15T10:00:00Z", on("d1", "u1"), 4);
  ev("document.viewed", "2024-03-16T10:00:00Z", on("d2", "u2"), 2);
  ev("document.viewed", "2024-03-16T11:00:00Z", on("d3", "u3"), 1);
  ev("document.viewed", "2024-03-20T12:27:00Z", on("d1", "u1"));  // realtime window [12:26, 12:31)
  ev("document.viewed", "2024-03-20T12:29:59Z", on("d2", "u4"));
  ev("document.viewed", "2024-03-20T12:20:00Z", on("d3", "u5"));  // too long ago for realtime
  ASSERT_TRUE(h.Dlq().empty());

  json d = Ok(h.Queries(org).GetDashboardData(org, now));
  EXPECT_EQ(d["currentPeriod"]["periodStart"], "2024-03-01T00:00:00.000Z");
  EXPECT_EQ(d["currentPeriod"]["plan"], "free");
  EXPECT_EQ(d["currentPeriod"]["usage"]["api_calls"], 13);
  EXPECT_EQ(d["currentPeriod"]["usage"]["events"], 23);
  json wow = d["trends"]["weekOverWeek"]["api_calls"];
  EXPECT_EQ(wow["current"], 9);
  EXPECT_EQ(wow["previous"], 4);
  EXPECT_EQ(wow["change"], 5);
  EXPECT_EQ(wow["changePercent"], 125);
  json mom = d["trends"]["monthOverMonth"]["api_calls"];
  EXPECT_EQ(mom["current"], 13);
  EXPECT_EQ(mom["previous"], 0);
  EXPECT_TRUE(mom["changePercent"].is_null());
  EXPECT_EQ(d["trends"]["windowEnd"], "2024-03-20T13:00:00.000Z");

  json users = d["topUsers"];
  ASSERT_EQ(users.size(), 5u);
  EXPECT_EQ(users[0], json({{"userId", "u1"}, {"metricType", "events"}, {"value", 10}}));
  EXPECT_EQ(users[1]["userId"], "u2");
  EXPECT_EQ(users[1]["value"], 9);
  EXPECT_EQ(users[2]["userId"], "u3");
  EXPECT_EQ(users[3]["userId"], "u4");  // ties by id
  EXPECT_EQ(users[4]["userId"], "u5");
  json docs = d["topDocuments"];
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0],
            json({{"resourceId", "d1"}, {"metricType", "document_activity"}, {"value", 5}}));
  EXPECT_EQ(docs[1]["resourceId"], "d2");
  EXPECT_EQ(docs[1]["value"], 3);
  EXPECT_EQ(docs[2]["resourceId"], "d3");

  json rt = d["realtime"];
  EXPECT_EQ(rt["windowStart"], "2024-03-20T12:26:00.000Z");
  EXPECT_EQ(rt["windowEnd"], "2024-03-20T12:31:00.000Z");
  EXPECT_EQ(rt["activeUsers"], 2);
  EXPECT_EQ(rt["openDocuments"], 2);
  EXPECT_EQ(rt["events"], 2);
  // Five minutes later nothing is realtime any more.
  EXPECT_EQ(
      Ok(h.Queries(org).GetDashboardData(org, now + 5 * kMinuteMs))["realtime"]["activeUsers"], 0);
}

TEST(UsageReport, CatalogFileMatchesTheBuiltInDefaultAndLoadErrorsAreClear) {
  std::ifstream in(std::string(CM_SOURCE_DIR) + "/processors/usage/default_catalog.json");
  ASSERT_TRUE(in.good());
  json file = json::parse(in);
  EXPECT_EQ(file, json::parse(DefaultCatalogJson()));
  auto loaded =
      Ok(LoadCatalog(std::string(CM_SOURCE_DIR) + "/processors/usage/default_catalog.json"));
  EXPECT_EQ(loaded.MetricTypes(), DefaultCatalog().MetricTypes());
  EXPECT_EQ(
      loaded.MetricTypes(),
      (std::vector<std::string>{"api_calls", "storage_bytes", "documents", "collaborators",
                                "compute_seconds", "active_users", "events", "document_activity"}));
  EXPECT_EQ(loaded.PlanNames(), (std::vector<std::string>{"free", "pro", "enterprise"}));
  EXPECT_EQ(loaded.FindMetric("storage_bytes")->quota_scope, QuotaScope::kLifetime);
  EXPECT_FALSE(loaded.FindPlan("enterprise")->Find("api_calls")->limit.has_value());

  EXPECT_EQ(LoadCatalog("/nonexistent/catalog.json").status().code(),
            state::Status::Code::kNotFound);
  const auto dir = std::filesystem::temp_directory_path();
  auto write = [&](const std::string& name, const std::string& text) {
    auto path = (dir / name).string();
    std::ofstream(path) << text;
    return path;
  };
  auto err = [&](json c) {
    auto path = write("usage-catalog-test.json", c.dump());
    auto r = LoadCatalog(path);
    std::filesystem::remove(path);
    return r.ok() ? std::string("ok") : r.status().message();
  };
  auto bad_json = write("usage-catalog-bad.json", "{ nope");
  EXPECT_THAT(LoadCatalog(bad_json).status().message(), HasSubstr("not valid JSON"));
  std::filesystem::remove(bad_json);
  json base = json::parse(DefaultCatalogJson());
  json c1 = base;
  c1["metrics"][0]["aggregation"] = "median";
  EXPECT_THAT(err(c1), HasSubstr("metric api_calls: aggregation 'median' is not count"));
  json c2 = base;
  c2["plans"][0]["metrics"]["bandwidth"] = {{"limit", 1}};
  EXPECT_THAT(err(c2), HasSubstr("plan free.metrics.bandwidth: no such metric"));
  json c3 = base;
  c3["metrics"][1].erase("valueProperty");
  EXPECT_THAT(err(c3), HasSubstr("sum needs a valueProperty"));
  json c4 = base;
  c4["defaultPlan"] = "gold";
  EXPECT_THAT(err(c4), HasSubstr("defaultPlan"));
  json c5 = base;
  c5["metrics"][0]["groupBy"] = {"colour"};
  EXPECT_THAT(err(c5), HasSubstr("groupBy 'colour' is not a dimension"));
  json c6 = base;
  c6["plans"][1]["metrics"]["api_calls"]["limit"] = -5;
  EXPECT_THAT(err(c6), HasSubstr("limit must be a number >= 0"));

  // The topology refuses inconsistent options.
  UsageOptions o;
  o.dedup_retention_ms = 30 * kDayMs;
  topology::TopologyBuilder b;
  EXPECT_THAT(AddUsageTopology(b, o).message(), HasSubstr("dedup retention must exceed"));
  o = UsageOptions{};
  o.retention.minute_ms = 100 * kDayMs;
  EXPECT_THAT(AddUsageTopology(b, o).message(), HasSubstr("minute <= hour"));
  // Store names and specs, for the HTTP layer.
  ASSERT_EQ(UsageStoreSpecs().size(), 6u);
  EXPECT_EQ(UsageStoreSpecs()[0].name, kAggregatesStore);
}

}  // namespace
}  // namespace cm::usage::testing
