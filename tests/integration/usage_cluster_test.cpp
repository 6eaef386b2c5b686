// The usage application as a user sees it over HTTP when its partitions are spread over
// instances: two instances of one application id answer every query alike and apply commands
// on each other's partitions; a survivor takes over after a stop; concurrent producers with
// duplicate eventIds count exactly; a restart without local state restores everything and
// does not fire a quota alert twice. Every expected figure is computed from the events sent.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "child_process.h"
#include "kafka_clients.h"
#include "processors/usage/time_util.h"
#include "topology/common/wall_clock.h"
#include "topology/tools/application_reset.h"
#include "usage_instance.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::UsageInstance;
using testing::WaitFor;

constexpr int kPartitions = 4;
constexpr int64_t kMinute = usage::kMinuteMs;
constexpr int64_t kHour = usage::kHourMs;
constexpr int64_t kDay = usage::kDayMs;

// The first instant of the UTC month that holds `ms`: the billing period of an organization
// with the default anchor day 1.
int64_t MonthStart(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  tm.tm_mday = 1;
  tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
  return static_cast<int64_t>(::timegm(&tm)) * 1000;
}

// One usage event as the test sends it. Every event is on a document, so it also feeds
// document_activity.
struct Sent {
  std::string id;
  std::string org;
  std::string user;
  std::string type;  // api.call, storage.upload, document.created, presence.joined, compute.used
  double quantity = 0;
  int64_t ts = 0;
  std::string document = "doc-0";

  json ToJson() const {
    json e = {{"eventId", id},     {"organizationId", org},      {"userId", user},
              {"eventType", type}, {"resourceType", "document"}, {"resourceId", document},
              {"timestamp", ts}};
    if (type == "storage.upload" || type == "compute.used") e["quantity"] = quantity;
    return e;
  }
};

// `n` events of `org` with ids `<tag>-<org>-<i>`, of every kind, over three users, at `ts`
// (one millisecond apart).
std::vector<Sent> MakeEvents(const std::string& org, const std::string& tag, int n, int64_t ts) {
  static const char* types[] = {"api.call", "storage.upload", "document.created", "presence.joined",
                                "api.call"};
  std::vector<Sent> out;
  for (int i = 0; i < n; ++i) {
    out.push_back({tag + "-" + org + "-" + std::to_string(i), org, "user-" + std::to_string(i % 3),
                   types[i % 5], 10.5 * (i % 4), ts + i, "doc-" + std::to_string(i % 5)});
  }
  return out;
}

// What the application must answer for one organization: the figures of its distinct events
// (by eventId; a duplicate is the same event sent again).
struct Expected {
  std::map<std::string, double> all;     // per metric, every event
  std::map<std::string, double> period;  // per metric, quota scope: the billing period or lifetime
  std::map<std::string, double> events_by_user;      // in the billing period
  std::map<std::string, double> all_events_by_user;  // every event
  double recent_events = 0;                          // in the dashboard's realtime window

  static Expected Of(const std::vector<Sent>& sent, const std::string& org, int64_t now) {
    std::map<std::string, Sent> distinct;
    for (const auto& e : sent)
      if (e.org == org) distinct.emplace(e.id, e);
    const int64_t period_start = MonthStart(now);
    const int64_t realtime_start = now / kMinute * kMinute - 4 * kMinute;
    auto figures = [&](auto&& keep) {
      std::map<std::string, double> m;
      std::set<std::string> users, collaborators;
      for (const auto& [id, e] : distinct) {
        if (!keep(e)) continue;
        m["events"] += 1;
        m["document_activity"] += 1;
        m["api_calls"] += e.type == "api.call";
        m["documents"] += e.type == "document.created";
        m["compute_seconds"] += e.type == "compute.used" ? e.quantity : 0;
        users.insert(e.user);
        if (e.type == "presence.joined") collaborators.insert(e.user);
      }
      m["active_users"] = static_cast<double>(users.size());
      m["collaborators"] = static_cast<double>(collaborators.size());
      return m;
    };
    Expected x;
    x.all = figures([](const Sent&) { return true; });
    x.period = figures([&](const Sent& e) { return e.ts >= period_start; });
    double storage = 0;  // storage_bytes is lifetime-scoped
    for (const auto& [id, e] : distinct) storage += e.type == "storage.upload" ? e.quantity : 0;
    x.all["storage_bytes"] = x.period["storage_bytes"] = storage;
    for (const auto& [id, e] : distinct) {
      if (e.ts >= period_start) x.events_by_user[e.user] += 1;
      x.all_events_by_user[e.user] += 1;
      x.recent_events += e.ts >= realtime_start;
    }
    return x;
  }
};

// A body without the fields that only say when it was made.
json Timeless(json body) {
  if (body.is_object()) {
    body.erase("generatedAt");
    if (body.contains("realtime")) body["realtime"].erase("asOf");
  }
  return body;
}

class UsageClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDirectory("cm-it-usage-cluster");
    auto broker = testing::StartUsageBroker(kPartitions);
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
  }

  void TearDown() override {
    b_.reset();
    a_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  void StartInstance(std::unique_ptr<UsageInstance>& instance, const std::string& id) {
    instance = std::make_unique<UsageInstance>(
        *broker_, testing::UsageInstanceOptions{.application_id = "it-usage-cluster",
                                                .instance_id = id,
                                                .state_dir = (dir_ / id).string()});
    auto s = instance->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  double StartWithAFiredAlert(class FiredAlerts& alerts, std::vector<Sent>& before, int& first);
  // After StartWithAFiredAlert: posts enough new documents to pass 80% of `limit`, then expects
  // the 50% and the 80% alert once each. Alerts of one organization are in order on its
  // partition: once the 80% alert is there, a second 50% alert would be too.
  void CrossEightyPercentAndExpectEachAlertOnce(class FiredAlerts& alerts, double limit, int first);

  // Every task of the topology: one per partition of each sub-topology (usage and teams share
  // one; the teams user index is another).
  size_t AllTasks() const { return a_->streams().topology().subtopologies().size() * kPartitions; }

  // Two instances that split the partitions between them, and two organizations owned by each
  // (as their running tasks say, not by assumption).
  void StartTwo() {
    ASSERT_NO_FATAL_FAILURE(StartInstance(a_, "a"));
    ASSERT_NO_FATAL_FAILURE(StartInstance(b_, "b"));
    ASSERT_TRUE(WaitFor(
        [&] {
          auto ta = a_->streams().RunningTasks(), tb = b_->streams().RunningTasks();
          std::set<std::string> all(ta.begin(), ta.end());
          all.insert(tb.begin(), tb.end());
          return a_->streams().Ready() && b_->streams().Ready() && !ta.empty() && !tb.empty() &&
                 all.size() == ta.size() + tb.size() && all.size() == AllTasks();
        },
        60s))
        << a_->streams().ReadyReport().dump() << b_->streams().ReadyReport().dump();
    // Until each instance's metadata names the owner of every task, a query for the other's
    // organization answers 503 "retry shortly".
    ASSERT_TRUE(WaitFor(
        [&] {
          for (UsageInstance* at : {a_.get(), b_.get()}) {
            for (UsageInstance* runner : {a_.get(), b_.get()}) {
              for (const auto& task : runner->streams().RunningTasks()) {
                auto owner = at->metadata().OwnerOf(task);
                if (!owner || owner->instance_id != runner->metadata().instance_id()) return false;
              }
            }
          }
          return true;
        },
        30s));
    std::vector<std::string> on_a, on_b;
    for (int i = 0; (on_a.size() < 2 || on_b.size() < 2) && i < 1000; ++i) {
      const std::string org = "org-" + std::to_string(i);
      auto& on = a_->Owns(org) ? on_a : on_b;
      if (on.size() < 2) on.push_back(org);
    }
    ASSERT_TRUE(on_a.size() == 2 && on_b.size() == 2);
    ASSERT_TRUE(b_->Owns(on_b[0]) && b_->Owns(on_b[1]));
    orgs_ = {on_a[0], on_a[1], on_b[0], on_b[1]};  // orgs_[0..1] on a, orgs_[2..3] on b
  }

  // Posts the events in batches of `batch`, alternating between the instances given.
  void Post(const std::vector<Sent>& events, const std::vector<UsageInstance*>& to,
            size_t batch = 7) {
    for (size_t i = 0, n = 0; i < events.size(); i += batch, ++n) {
      json body = {{"events", json::array()}};
      for (size_t j = i; j < std::min(events.size(), i + batch); ++j)
        body["events"].push_back(events[j].ToJson());
      auto r =
          to[n % to.size()]->client().Post("/v1/usage/events", body.dump(), "application/json");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 202) << r->body;
    }
    sent_.insert(sent_.end(), events.begin(), events.end());
  }

  static std::string Range() {
    const int64_t today = topology::WallClockMs() / kDay * kDay;
    return "&startTime=" + std::to_string(today - 2 * kDay) +
           "&endTime=" + std::to_string(today + kDay);
  }

  // The paths of every query of one organization, with a quota period given by `quota`.
  static std::vector<std::string> QueryPaths(const std::string& org, const json& quota) {
    const std::string base = "/v1/usage/orgs/" + org;
    const std::string period = "periodStart=" + quota["periodStart"].get<std::string>() +
                               "&periodEnd=" + quota["periodEnd"].get<std::string>();
    return {base + "/metrics?granularity=day" + Range(),
            base + "/metrics?granularity=hour" + Range(),
            base + "/metrics?granularity=day&metricTypes=events&dimensions=userId" + Range(),
            base + "/quota",
            base + "/quota/check?metricType=api_calls&amount=1",
            base + "/report?" + period,
            base + "/dashboard",
            base + "/alerts"};
  }

  // Waits until `instance` has processed every event sent for every organization.
  bool Processed(UsageInstance& instance) {
    const int64_t now = topology::WallClockMs();
    return WaitFor(
        [&] {
          for (const auto& org : orgs_) {
            int status = 0;
            json m = instance.GetJson(
                "/v1/usage/orgs/" + org + "/metrics?granularity=day&metricTypes=events" + Range(),
                &status);
            if (status != 200 ||
                m["totals"].value("events", -1.0) != Expected::Of(sent_, org, now).all["events"])
              return false;
          }
          return true;
        },
        60s);
  }

  // Every query of every organization answers the same at each instance, and equals the
  // figures of the events sent. Returns the answers (without their time of making).
  std::map<std::string, json> ExpectFigures(const std::vector<UsageInstance*>& at) {
    std::map<std::string, json> answers;
    for (const auto& org : orgs_) {
      int status = 0;
      json quota = at[0]->GetJson("/v1/usage/orgs/" + org + "/quota", &status);
      EXPECT_EQ(status, 200) << quota.dump();
      if (status != 200) continue;
      bool answered = true;
      for (const auto& path : QueryPaths(org, quota)) {
        json first;
        // A minute can turn between two requests (the dashboard's realtime window): retry.
        const bool same = WaitFor(
            [&] {
              first = Timeless(at[0]->GetJson(path, &status));
              if (status != 200) return false;
              for (size_t i = 1; i < at.size(); ++i) {
                if (Timeless(at[i]->GetJson(path, &status)) != first || status != 200) return false;
              }
              return true;
            },
            20s);
        EXPECT_TRUE(same) << path << " answers differ or fail: " << first.dump();
        answered = answered && same;
        answers[path] = first;
      }
      if (answered) ExpectOrgFigures(org, quota, answers);
    }
    return answers;
  }

  // `instance` answers every query as `answers` recorded it (but for the dashboard, whose
  // realtime window moves with the clock: ExpectFigures checks its figures).
  void ExpectSameAnswers(UsageInstance& instance, const std::map<std::string, json>& answers) {
    for (const auto& [path, body] : answers) {
      if (path.find("/dashboard") != std::string::npos) continue;
      json now_body;
      EXPECT_TRUE(WaitFor(
          [&] {
            int status = 0;
            now_body = Timeless(instance.GetJson(path, &status));
            return status == 200 && now_body == body;
          },
          30s))
          << path << "\nbefore: " << body.dump() << "\nafter:  " << now_body.dump();
    }
  }

  void ExpectOrgFigures(const std::string& org, const json& quota,
                        const std::map<std::string, json>& answers) {
    const int64_t now = topology::WallClockMs();
    const Expected x = Expected::Of(sent_, org, now);
    const auto paths = QueryPaths(org, quota);
    const std::string plan_name = quota["plan"];
    EXPECT_EQ(usage::ParseTimestampString(quota["periodStart"].get<std::string>()).value(),
              MonthStart(now));
    const usage::Catalog catalog = usage::DefaultCatalog();
    const usage::Plan* plan = catalog.FindPlan(plan_name);
    ASSERT_NE(plan, nullptr) << plan_name;

    for (int i : {0, 1}) {  // day and hour: totals over the range
      const json& totals = answers.at(paths[i])["totals"];
      for (const auto& [metric, value] : x.all)
        EXPECT_EQ(totals.value(metric, -1.0), value) << org << " " << paths[i] << " " << metric;
    }
    std::map<std::string, double> by_user;  // every event falls in the range
    for (const auto& p : answers.at(paths[2])["dataPoints"])
      by_user[p["dimensions"]["userId"].get<std::string>()] += p["value"].get<double>();
    EXPECT_EQ(by_user, x.all_events_by_user) << org;

    for (const auto& m : quota["metrics"]) {
      const std::string metric = m["metricType"];
      EXPECT_EQ(m["used"].get<double>(), x.period.at(metric)) << org << " " << metric;
      const usage::PlanMetric* pm = plan->Find(metric);
      ASSERT_NE(pm, nullptr) << metric;
      if (pm->limit) {
        EXPECT_EQ(m["limit"].get<double>(), *pm->limit) << org << " " << metric;
      } else {
        EXPECT_TRUE(m["limit"].is_null()) << org << " " << metric;
      }
    }
    const json& check = answers.at(paths[4]);
    const double api = x.period.at("api_calls");
    const double limit = *plan->Find("api_calls")->limit;
    EXPECT_EQ(check["used"].get<double>(), api) << check.dump();
    EXPECT_EQ(check["limit"].get<double>(), limit) << check.dump();
    EXPECT_EQ(check["remaining"].get<double>(), limit - api) << check.dump();
    EXPECT_EQ(check["allowed"], api + 1 <= limit) << check.dump();

    const json& report = answers.at(paths[5]);
    EXPECT_EQ(report["plan"], plan_name);
    for (const auto& [metric, value] : x.period)
      EXPECT_EQ(report["summary"]["metrics"][metric]["quantity"].get<double>(), value)
          << org << " report " << metric;

    const json& dash = answers.at(paths[6]);
    for (const auto& [metric, value] : x.period)
      EXPECT_EQ(dash["currentPeriod"]["usage"][metric].get<double>(), value)
          << org << " dashboard " << metric;
    std::vector<std::pair<double, std::string>> ranked;
    for (const auto& [user, n] : x.events_by_user) ranked.emplace_back(-n, user);
    std::sort(ranked.begin(), ranked.end());
    json top = json::array();
    for (const auto& [n, user] : ranked)
      top.push_back({{"userId", user}, {"metricType", "events"}, {"value", -n}});
    EXPECT_EQ(dash["topUsers"], top) << org;
    EXPECT_EQ(dash["realtime"]["events"].get<double>(), x.recent_events) << org;
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestBroker> broker_;
  std::unique_ptr<UsageInstance> a_;
  std::unique_ptr<UsageInstance> b_;
  std::vector<std::string> orgs_;
  std::vector<Sent> sent_;
};

TEST_F(UsageClusterTest, TwoInstancesAnswerAlikeAndApplyCommandsOnEachOthersPartitions) {
  ASSERT_NO_FATAL_FAILURE(StartTwo());
  const int64_t now = topology::WallClockMs();
  // Recent events, plus three api calls three hours ago (in distinct minutes) for the rollup.
  std::vector<Sent> events;
  for (const auto& org : orgs_) {
    for (auto& e : MakeEvents(org, "now", 20, now - 2000)) events.push_back(e);
    for (int i = 0; i < 3; ++i)
      events.push_back({"old-" + org + "-" + std::to_string(i), org, "user-0", "api.call", 0,
                        now - 3 * kHour + i * kMinute});
  }
  std::shuffle(events.begin(), events.end(), std::mt19937(7));  // orgs of both, in one batch
  ASSERT_NO_FATAL_FAILURE(Post(events, {a_.get(), b_.get()}));
  ASSERT_TRUE(Processed(*a_));
  ExpectFigures({a_.get(), b_.get()});

  // Commands sent to the instance that does not own the organization.
  const std::string on_a = orgs_[0], on_b = orgs_[2];
  auto r = a_->client().Put("/v1/usage/orgs/" + on_b + "/plan", json({{"plan", "pro"}}).dump(),
                            "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["plan"], "pro") << r->body;
  EXPECT_EQ(json::parse(r->body)["previousPlan"], "free") << r->body;
  r = b_->client().Post("/v1/usage/orgs/" + on_a + "/alerts",
                        json({{"metricType", "api_calls"},
                              {"thresholds", {50, 90}},
                              {"notificationChannels", {"email"}}})
                            .dump(),
                        "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 201) << r->body;
  const std::string subscription = json::parse(r->body)["subscriptionId"];
  for (UsageInstance* at : {a_.get(), b_.get()}) {
    int status = 0;
    json quota = at->GetJson("/v1/usage/orgs/" + on_b + "/quota", &status);
    EXPECT_EQ(status, 200) << quota.dump();
    EXPECT_EQ(quota["plan"], "pro") << quota.dump();
    json alerts = at->GetJson("/v1/usage/orgs/" + on_a + "/alerts", &status);
    EXPECT_EQ(status, 200) << alerts.dump();
    ASSERT_EQ(alerts["subscriptions"].size(), 1u) << alerts.dump();
    EXPECT_EQ(alerts["subscriptions"][0]["subscriptionId"], subscription) << alerts.dump();
  }
  // The quota figures now follow the pro plan, alike at both instances.
  ExpectFigures({a_.get(), b_.get()});

  // A rollup of every partition, asked of one instance: each owner rolls up its own.
  const int64_t cutoff = now - 2 * kHour;
  r = b_->client().Post(
      "/v1/usage/rollups",
      json({{"metricType", "api_calls"}, {"cutoffTime", cutoff}, {"granularities", {"minute"}}})
          .dump(),
      "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json rollup = json::parse(r->body);
  // Minute buckets before the cutoff: one ungrouped and one grouped series each (one user
  // and resource type per minute).
  std::set<std::pair<std::string, int64_t>> minutes;
  for (const auto& e : sent_)
    if (e.type == "api.call" && e.ts / kMinute * kMinute + kMinute <= cutoff)
      minutes.insert({e.org, e.ts / kMinute});
  EXPECT_EQ(rollup["partitions"], kPartitions) << rollup.dump();
  EXPECT_EQ(rollup["organizations"], orgs_.size()) << rollup.dump();
  EXPECT_EQ(rollup["rolledUp"], 2 * minutes.size()) << rollup.dump();
  EXPECT_EQ(rollup["errors"], 0) << rollup.dump();
  const int64_t old_hour = (now - 3 * kHour) / kHour * kHour;
  for (const auto& org : orgs_) {
    for (UsageInstance* at : {a_.get(), b_.get()}) {
      int status = 0;
      json minute = at->GetJson(
          "/v1/usage/orgs/" + org + "/metrics?granularity=minute&metricTypes=api_calls&startTime=" +
              std::to_string(old_hour) + "&endTime=" + std::to_string(old_hour + kHour),
          &status);
      EXPECT_EQ(status, 200) << minute.dump();
      EXPECT_TRUE(minute["rolledUpBefore"].contains("api_calls")) << org << minute.dump();
    }
  }
  // Hours and days keep every event.
  ExpectFigures({a_.get(), b_.get()});
}

TEST_F(UsageClusterTest, SurvivorTakesOverAndCountsNewEventsOnceAndDuplicatesNever) {
  ASSERT_NO_FATAL_FAILURE(StartTwo());
  const int64_t now = topology::WallClockMs();
  std::vector<Sent> first;
  for (const auto& org : orgs_)
    for (auto& e : MakeEvents(org, "first", 25, now - 3000)) first.push_back(e);
  ASSERT_NO_FATAL_FAILURE(Post(first, {a_.get(), b_.get()}));
  ASSERT_TRUE(Processed(*b_));
  const auto before = ExpectFigures({a_.get(), b_.get()});

  b_->Stop();
  ASSERT_TRUE(WaitFor(
      [&] { return a_->streams().Ready() && a_->streams().RunningTasks().size() == AllTasks(); },
      60s))
      << a_->streams().ReadyReport().dump();
  // The survivor restored the other's partitions from their changelogs: the same answers.
  ExpectSameAnswers(*a_, before);
  ExpectFigures({a_.get()});

  // Every earlier event delivered again, then new ones.
  std::vector<Sent> again = first;
  std::vector<Sent> more;
  for (const auto& org : orgs_)
    for (auto& e : MakeEvents(org, "second", 10, now - 1000)) more.push_back(e);
  ASSERT_NO_FATAL_FAILURE(Post(again, {a_.get()}));
  ASSERT_NO_FATAL_FAILURE(Post(more, {a_.get()}));
  ASSERT_TRUE(Processed(*a_));
  ExpectFigures({a_.get()});
}

TEST_F(UsageClusterTest, ConcurrentProducersWithSharedEventIdsCountEachEventOnce) {
  ASSERT_NO_FATAL_FAILURE(StartTwo());
  const int64_t now = topology::WallClockMs();
  // Each HTTP thread posts its own events and the shared ones; the Kafka producer writes its
  // own and the shared ones too.
  constexpr int kThreads = 4;
  std::vector<Sent> shared;
  for (const auto& org : orgs_)
    for (auto& e : MakeEvents(org, "shared", 15, now - 5000)) shared.push_back(e);
  std::vector<std::vector<Sent>> per_thread(kThreads + 1);
  for (int t = 0; t <= kThreads; ++t) {
    for (const auto& org : orgs_)
      for (auto& e : MakeEvents(org, "t" + std::to_string(t), 30, now - 4000 + t * 100))
        per_thread[t].push_back(e);
    per_thread[t].insert(per_thread[t].end(), shared.begin(), shared.end());
    std::shuffle(per_thread[t].begin(), per_thread[t].end(), std::mt19937(t));
  }
  std::vector<std::thread> producers;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      httplib::Client client("127.0.0.1", (t % 2 ? b_ : a_)->port());
      client.set_bearer_token_auth(cm::testing::kTestAdminKey);
      client.set_read_timeout(30, 0);
      const auto& events = per_thread[t];
      for (size_t i = 0; i < events.size(); i += 10) {
        json body = {{"events", json::array()}};
        for (size_t j = i; j < std::min(events.size(), i + 10); ++j)
          body["events"].push_back(events[j].ToJson());
        auto r = client.Post("/v1/usage/events", body.dump(), "application/json");
        if (!r || r->status != 202) ++failures;
      }
    });
  }
  producers.emplace_back([&] {
    auto producer = testing::NewProducer(broker_->bootstrap_servers());
    for (const auto& e : per_thread[kThreads])
      testing::Produce(producer.get(), "cloudmatrix.events", e.org, e.ToJson().dump());
    if (rd_kafka_flush(producer.get(), 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) ++failures;
  });
  for (auto& t : producers) t.join();
  ASSERT_EQ(failures.load(), 0);
  for (const auto& events : per_thread) sent_.insert(sent_.end(), events.begin(), events.end());

  // Once each organization's last event (appended after every producer finished) counts,
  // everything before it on its partition has been processed.
  std::vector<Sent> last;
  for (const auto& org : orgs_)
    last.push_back({"last-" + org, org, "user-9", "compute.used", 1.5, now - 500});
  ASSERT_NO_FATAL_FAILURE(Post(last, {a_.get(), b_.get()}, 1));
  ASSERT_TRUE(Processed(*a_));
  ExpectFigures({a_.get(), b_.get()});
}

// The quota alerts in cloudmatrix.quota-alerts, counted by (organization, threshold).
class FiredAlerts {
 public:
  explicit FiredAlerts(const std::string& bootstrap)
      : topic_(bootstrap, "cloudmatrix.quota-alerts", kPartitions) {}
  // Reads what arrived since the last call.
  void Read() {
    for (const auto& m : topic_.Poll(100)) {
      json a = json::parse(m.value);
      fired_[{a["organizationId"].get<std::string>(), a["threshold"].get<double>()}]++;
    }
  }
  int Count(const std::string& org, double threshold) {
    auto it = fired_.find({org, threshold});
    return it == fired_.end() ? 0 : it->second;
  }
  size_t Kinds() const { return fired_.size(); }

 private:
  testing::TopicReader topic_;
  std::map<std::pair<std::string, double>, int> fired_;
};

// `n` document.created events of `org` at ts, ts+1, ...
std::vector<Sent> Documents(const std::string& org, const std::string& tag, int n, int64_t ts) {
  std::vector<Sent> out;
  for (int i = 0; i < n; ++i)
    out.push_back({tag + "-" + std::to_string(i), org, "user-" + std::to_string(i % 4),
                   "document.created", 0, ts + i});
  return out;
}

// One instance, "org-alerts" subscribed to documents alerts at 50% and 80% of the free plan,
// and events past 50%: the 50% alert has fired once. Returns the documents limit.
double UsageClusterTest::StartWithAFiredAlert(FiredAlerts& alerts, std::vector<Sent>& before,
                                              int& first) {
  StartInstance(a_, "solo");
  if (HasFatalFailure()) return 0;
  orgs_ = {"org-alerts", "org-other"};
  const usage::Catalog catalog = usage::DefaultCatalog();
  const double limit = *catalog.FindPlan("free")->Find("documents")->limit;
  auto r = a_->client().Post("/v1/usage/orgs/org-alerts/alerts",
                             json({{"metricType", "documents"}, {"thresholds", {50, 80}}}).dump(),
                             "application/json");
  EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
  const int64_t now = topology::WallClockMs();
  first = static_cast<int>(limit * 0.6);  // past 50%, short of 80%
  before = Documents("org-alerts", "doc", first, now - 5000);
  for (auto& e : MakeEvents("org-other", "other", 30, now - 5000)) before.push_back(e);
  Post(before, {a_.get()}, 20);
  EXPECT_TRUE(Processed(*a_));
  EXPECT_TRUE(WaitFor(
      [&] {
        alerts.Read();
        return alerts.Count("org-alerts", 50) == 1;
      },
      30s));
  return limit;
}

void UsageClusterTest::CrossEightyPercentAndExpectEachAlertOnce(FiredAlerts& alerts, double limit,
                                                                int first) {
  const int second = static_cast<int>(limit * 0.85) - first;
  ASSERT_NO_FATAL_FAILURE(
      Post(Documents("org-alerts", "doc-after", second, topology::WallClockMs() - 1000), {a_.get()},
           20));
  ASSERT_TRUE(Processed(*a_));
  ASSERT_TRUE(WaitFor(
      [&] {
        alerts.Read();
        return alerts.Count("org-alerts", 80) >= 1;
      },
      30s));
  alerts.Read();
  EXPECT_EQ(alerts.Count("org-alerts", 50), 1);
  EXPECT_EQ(alerts.Count("org-alerts", 80), 1);
  EXPECT_EQ(alerts.Kinds(), 2u);
  ExpectFigures({a_.get()});
}

TEST_F(UsageClusterTest, RestartWithoutLocalStateRestoresFiguresAndFiresNoAlertTwice) {
  FiredAlerts alerts(broker_->bootstrap_servers());
  std::vector<Sent> before;
  int first = 0;
  const double limit = StartWithAFiredAlert(alerts, before, first);
  ASSERT_FALSE(HasFailure());
  const auto figures = ExpectFigures({a_.get()});

  a_->Stop();
  std::filesystem::remove_all(dir_ / "solo");
  ASSERT_FALSE(std::filesystem::exists(dir_ / "solo"));
  auto s = a_->Start();  // restores every store from its changelog before it is ready
  ASSERT_TRUE(s.ok()) << s.ToString();
  ExpectSameAnswers(*a_, figures);
  ExpectFigures({a_.get()});

  // The same documents again (counted once), then enough new ones to pass 80%.
  ASSERT_NO_FATAL_FAILURE(Post(before, {a_.get()}, 20));
  CrossEightyPercentAndExpectEachAlertOnce(alerts, limit, first);
}

// `cmstream replay --from-beginning` (ApplicationReset) rebuilds every figure from the log,
// and sends no alert again that the application sent before the reset; alerts crossed after
// it are sent as usual.
TEST_F(UsageClusterTest, ReplayFromTheBeginningRebuildsTheFiguresAndSendsNoAlertAgain) {
  FiredAlerts alerts(broker_->bootstrap_servers());
  std::vector<Sent> before;
  int first = 0;
  const double limit = StartWithAFiredAlert(alerts, before, first);
  ASSERT_FALSE(HasFailure());
  const auto figures = ExpectFigures({a_.get()});

  a_->Stop();
  topology::TopologyBuilder builder;
  ASSERT_TRUE(usage::AddUsageTopology(builder).ok());
  auto topology = builder.Build(a_->options().application_id);
  ASSERT_TRUE(topology.ok());
  topology::ResetOptions o;
  o.bootstrap_servers = broker_->bootstrap_servers();
  o.embedded_broker = true;
  o.state_dir = a_->options().state_dir;
  topology::ApplicationReset reset(*topology, o, broker_->admin());
  ASSERT_TRUE(reset.CheckStopped().ok());
  auto plan = reset.Plan();
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_FALSE(plan->marker.published.empty()) << plan->Describe();
  ASSERT_TRUE(reset.Apply(*plan).ok());

  auto s = a_->Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(Processed(*a_));
  ExpectSameAnswers(*a_, figures);
  // The replay went past the events that fired the 50% alert before the reset.
  EXPECT_TRUE(WaitFor(
      [&] {
        return a_->streams().RenderMetrics().find(
                   "cmstream_replayed_outputs_dropped_total{thread=\"0\"} 1\n") !=
               std::string::npos;
      },
      10s))
      << a_->streams().RenderMetrics();

  CrossEightyPercentAndExpectEachAlertOnce(alerts, limit, first);
}

}  // namespace
}  // namespace cm
