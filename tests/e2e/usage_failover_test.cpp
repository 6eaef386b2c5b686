// Two `cmstream run --topology cloudmatrix` instances share the partitions of one `cmstream
// broker`; one of them is killed with SIGKILL twice while usage events for 120 organizations
// arrive on cloudmatrix.events, with exact redeliveries, eventIds repeated later in the stream
// and a few repeats with other content. At the end, for every organization, the figures over
// HTTP count each distinct eventId once (first version wins), the quota status agrees, every
// crossed alert threshold is on cloudmatrix.quota-alerts exactly once (none that was not
// crossed), and each conflicting repeat is in the DLQ exactly once. A quarter of the
// organizations are produced with librdkafka's default partitioner (CRC32, not Kafka's murmur2),
// so their records that land away from the owning task are re-produced to it across the kills.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "child_process.h"
#include "kafka_clients.h"
#include "run_instance.h"
#include "snapshot_figures.h"
#include "topology/common/wall_clock.h"
#include "topology/kafka/partitioner.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ChildProcess;
using testing::RunInstance;
using testing::WaitFor;

constexpr int kPartitions = 8;
constexpr int kOrgs = 120;
constexpr int kSubscribedOrgs = 16;  // org-000 ... org-015 have a plan and alert subscriptions
constexpr int kMinEvents =
    30'000;                  // new eventIds, at least; the input goes on until the kills are done
constexpr int kChunk = 200;  // records per 200 ms: about 1,000 records/s
constexpr int kKills = 2;
const std::string kEventsTopic = "cloudmatrix.events";

using testing::CmstreamBinary;

std::string OrgName(int k) {
  char name[16];
  std::snprintf(name, sizeof name, "org-%03d", k);
  return name;
}

// Compute seconds per compute.used event (times 1..3) by org % 4: from never near the free
// plan's limit to past it early, so some thresholds are crossed mid-stream and some never.
constexpr double kComputeBase[] = {0.5, 6, 18, 60};

// The alert subscriptions of each subscribed organization: metric and thresholds in percent.
const std::map<std::string, std::vector<double>> kSubscriptions = {{"compute_seconds", {50, 80}},
                                                                   {"documents", {30, 90}}};

// What an organization's figures must end at: the first version of each distinct eventId.
// Quantities are multiples of 0.5, so sums in any order are exact.
struct Expected {
  double events = 0;
  double api_calls = 0;
  double documents = 0;
  double compute_seconds = 0;
  double storage_bytes = 0;

  double Of(const std::string& metric) const {
    if (metric == "events") return events;
    if (metric == "api_calls") return api_calls;
    if (metric == "documents") return documents;
    if (metric == "compute_seconds") return compute_seconds;
    return storage_bytes;
  }
};
const char* const kCheckedMetrics[] = {"events", "api_calls", "documents", "compute_seconds",
                                       "storage_bytes"};

// The record mix the producer writes, generated from a fixed seed.
struct Stream {
  struct Sent {
    std::string org;
    std::string value;
  };
  std::mt19937_64 rng{20261123};
  // Organizations org-003, org-007, ... go through a producer with librdkafka's default
  // partitioner; all of one organization's records go through one producer, in order.
  rd_kafka_t* by_murmur2 = nullptr;
  rd_kafka_t* by_crc32 = nullptr;
  static bool ProducedByCrc32(const std::string& org) { return std::stoi(org.substr(4)) % 4 == 3; }
  rd_kafka_t* ProducerOf(const std::string& org) const {
    return ProducedByCrc32(org) ? by_crc32 : by_murmur2;
  }
  int64_t not_before_ms = 0;  // start of the billing period: every event falls in it
  std::vector<Sent> first_versions;
  std::map<std::string, Expected> expected;
  int redeliveries = 0;  // the same record again at once
  int repeats = 0;       // an earlier event's JSON again, later in the stream
  int conflicts = 0;     // an earlier eventId with other content: DLQ, the first version counts

  // Appends one record or two (a new event and its redelivery) to a producer's queue.
  void ProduceOne() {
    const int r = static_cast<int>(rng() % 100);
    if (r < 6 && !first_versions.empty()) {
      const Sent& earlier = first_versions[rng() % first_versions.size()];
      if (r < 5) {
        testing::Produce(ProducerOf(earlier.org), kEventsTopic, earlier.org, earlier.value);
        ++repeats;
      } else {
        json other = json::parse(earlier.value);
        other["userId"] = "someone-else";
        testing::Produce(ProducerOf(earlier.org), kEventsTopic, earlier.org, other.dump());
        ++conflicts;
      }
      return;
    }
    const int k = static_cast<int>(rng() % kOrgs);
    const std::string org = OrgName(k);
    const int64_t now = topology::WallClockMs();
    json e = {
        {"eventId", "ev-" + std::to_string(first_versions.size())},
        {"organizationId", org},
        {"userId", "user-" + std::to_string(rng() % 20)},
        {"timestamp", std::max(not_before_ms, now - static_cast<int64_t>(rng() % 7'200'000))}};
    Expected& x = expected[org];
    ++x.events;
    const int kind = static_cast<int>(rng() % 20);
    if (kind < 8) {
      e["eventType"] = "api.call";
      ++x.api_calls;
    } else if (kind < 11) {
      e["eventType"] = "document.created";
      ++x.documents;
    } else if (kind < 16) {
      const double q = kComputeBase[k % 4] * static_cast<double>(1 + rng() % 3);
      e["eventType"] = "compute.used";
      e["quantity"] = q;
      x.compute_seconds += q;
    } else {
      const double q = 512.0 * static_cast<double>(1 + rng() % 8);
      e["eventType"] = "storage.upload";
      e["quantity"] = q;
      x.storage_bytes += q;
    }
    first_versions.push_back({org, e.dump()});
    testing::Produce(ProducerOf(org), kEventsTopic, org, first_versions.back().value);
    if (rng() % 100 < 5) {
      testing::Produce(ProducerOf(org), kEventsTopic, org, first_versions.back().value);
      ++redeliveries;
    }
  }
};

TEST(UsageFailoverTest, SigkilledInstanceCountsEachEventAndAlertOnce) {
  auto dir =
      std::filesystem::temp_directory_path() / ("cm-e2e-usage-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string info = (dir / "broker.json").string();
  const std::string parts = ":" + std::to_string(kPartitions);
  ChildProcess broker({CmstreamBinary(), "broker", "--info-file", info, "--topic",
                       kEventsTopic + parts, "--topic", "cloudmatrix.commands" + parts, "--topic",
                       "cloudmatrix.quota-alerts" + parts, "--topic", "cloudmatrix.dlq" + parts},
                      (dir / "broker.log").string());
  broker.Start();
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(info); }, 20s)) << broker.Log();
  json endpoints;
  std::ifstream(info) >> endpoints;
  const std::string bootstrap = endpoints["bootstrap"];
  const std::string admin = endpoints["admin"];

  auto make = [&](const std::string& id) {
    RunInstance in{id, testing::FreePort(), nullptr};
    in.process = std::make_unique<ChildProcess>(
        std::vector<std::string>{CmstreamBinary(), "run", "--topology", "cloudmatrix", "--brokers",
                                 bootstrap, "--broker-admin", admin, "--app-id", "e2e-usage",
                                 "--instance-id", id, "--state-dir", (dir / id).string(), "--http",
                                 "127.0.0.1:" + std::to_string(in.port)},
        (dir / (id + ".log")).string());
    in.process->Start();
    return in;
  };
  RunInstance a = make("a");
  RunInstance b = make("b");
  ASSERT_TRUE(WaitFor([&] { return a.Ready() && b.Ready(); }, 60s))
      << a.process->Log() << b.process->Log();
  httplib::Client client_a("127.0.0.1", a.port);
  client_a.set_bearer_token_auth(cm::testing::kTestAdminKey);
  httplib::Client client_b("127.0.0.1", b.port);
  client_b.set_bearer_token_auth(cm::testing::kTestAdminKey);
  for (auto* c : {&client_a, &client_b}) c->set_read_timeout(30, 0);

  // Plans and alert subscriptions first, over HTTP (commands answered once applied). Until
  // each instance has announced its tasks, a command for the other's task answers 503 (retry
  // shortly); the retry carries the same Idempotency-Key, so it is applied once.
  auto command = [&](const std::string& method, const std::string& path, const json& body,
                     const std::string& key) {
    std::pair<int, std::string> answer{0, "no answer"};  // status, body
    WaitFor(
        [&] {
          httplib::Headers headers = {{"Idempotency-Key", key}};
          auto r = method == "PUT" ? client_a.Put(path, headers, body.dump(), "application/json")
                                   : client_a.Post(path, headers, body.dump(), "application/json");
          if (r) answer = {r->status, r->body};
          return r && r->status != 503;
        },
        30s, 200ms);
    return answer;
  };
  for (int k = 0; k < kSubscribedOrgs; ++k) {
    const std::string base = "/v1/usage/orgs/" + OrgName(k);
    auto plan = command("PUT", base + "/plan", {{"plan", "free"}}, "plan-" + OrgName(k));
    ASSERT_EQ(plan.first, 200) << plan.second;
    for (const auto& [metric, thresholds] : kSubscriptions) {
      json sub = {
          {"metricType", metric}, {"thresholds", thresholds}, {"notificationChannels", {"email"}}};
      auto r = command("POST", base + "/alerts", sub, "alerts-" + metric + "-" + OrgName(k));
      ASSERT_EQ(r.first, 201) << r.second;
    }
  }
  // The free plan's limits and billing period, as the quota status reports them.
  auto quota = client_a.Get("/v1/usage/orgs/" + OrgName(0) + "/quota");
  ASSERT_TRUE(quota && quota->status == 200);
  const json quota0 = json::parse(quota->body);
  ASSERT_EQ(quota0["plan"].get<std::string>(), "free");
  std::map<std::string, double> limits;
  for (const auto& m : quota0["metrics"])
    if (m["limit"].is_number())
      limits[m["metricType"].get<std::string>()] = m["limit"].get<double>();
  for (const auto& [metric, thresholds] : kSubscriptions) ASSERT_TRUE(limits.contains(metric));
  auto period_start = usage::ParseTimestampString(quota0["periodStart"].get<std::string>());
  ASSERT_TRUE(period_start.ok());

  // The producer runs alongside the kills, paced so that every kill lands mid-stream, and goes
  // on until the kills are done, however slow the build (ASan) or the machine. A failed
  // assertion returns early; the jthread's destructor then stops and joins it.
  Stream stream;
  stream.not_before_ms = *period_start;
  std::atomic<int> produced{0};
  std::jthread producer([&](std::stop_token kills_done) {
    auto murmur2 = testing::NewProducer(bootstrap);
    auto crc32 = testing::NewClient(RD_KAFKA_PRODUCER, bootstrap,
                                    {{"linger.ms", "5"}, {"enable.idempotence", "true"}});
    stream.by_murmur2 = murmur2.get();
    stream.by_crc32 = crc32.get();
    while (static_cast<int>(stream.first_versions.size()) < kMinEvents ||
           !kills_done.stop_requested()) {
      for (int i = 0; i < kChunk; ++i) stream.ProduceOne();
      for (rd_kafka_t* p : {murmur2.get(), crc32.get()}) rd_kafka_flush(p, 10000);
      produced = static_cast<int>(stream.first_versions.size());
      std::this_thread::sleep_for(200ms);
    }
    for (rd_kafka_t* p : {murmur2.get(), crc32.get()}) rd_kafka_flush(p, 30000);
  });

  for (int kill = 1; kill <= kKills; ++kill) {
    // Kill b while it is busy with its share of the stream and has committed some of it.
    ASSERT_TRUE(WaitFor([&] { return b.Processed() >= 2000 && b.Commits() >= 2; }, 120s))
        << b.process->Log();
    std::cout << "kill " << kill << " of b after " << produced.load() << " new events\n";
    const auto killed = std::chrono::steady_clock::now();
    b.process->Kill(SIGKILL);
    b.process->Start();  // same instance id and state directory
    ASSERT_TRUE(WaitFor([&] { return b.Ready(); }, 120s)) << b.process->Log();
    std::cout << "b ready again after "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - killed)
                     .count()
              << " ms\n";
  }
  producer.request_stop();
  producer.join();
  std::cout << stream.first_versions.size() << " distinct events, " << stream.redeliveries
            << " redeliveries, " << stream.repeats << " later repeats, " << stream.conflicts
            << " conflicting repeats\n";

  // Every organization's figures over HTTP (day buckets around now cover every event time).
  std::map<std::string, testing::Points> points;
  auto all_exact = [&] {  // reads every organization, so that a failure reports them all
    bool exact = true;
    for (int k = 0; k < kOrgs; ++k) {
      const std::string org = OrgName(k);
      points[org] = testing::HttpPoints(k % 2 ? client_b : client_a, org, "day");
      for (const char* metric : kCheckedMetrics)
        exact = exact && testing::MetricSum(points[org], metric) == stream.expected[org].Of(metric);
    }
    return exact;
  };
  const bool exact = WaitFor(all_exact, 180s, 500ms);
  int wrong = 0;
  for (int k = 0; k < kOrgs; ++k) {
    const std::string org = OrgName(k);
    for (const char* metric : kCheckedMetrics) {
      const double got = testing::MetricSum(points[org], metric);
      const double want = stream.expected[org].Of(metric);
      if (got != want && ++wrong <= 10)
        ADD_FAILURE() << org << " " << metric << ": " << got << " over HTTP, " << want
                      << " distinct";
    }
  }
  EXPECT_TRUE(exact) << wrong << " figures wrong";

  // The quota status agrees: the period totals, the lifetime storage total, exceeded.
  for (int k = 0; k < kOrgs; ++k) {
    const std::string org = OrgName(k);
    auto r = (k % 2 ? client_a : client_b).Get("/v1/usage/orgs/" + org + "/quota");
    ASSERT_TRUE(r && r->status == 200) << org;
    const json status = json::parse(r->body);
    EXPECT_EQ(status["periodStart"], quota0["periodStart"]) << org;
    int checked = 0;
    for (const auto& m : status["metrics"]) {
      const std::string metric = m["metricType"];
      if (metric == "collaborators" || metric == "active_users") continue;
      ++checked;
      const double want = stream.expected[org].Of(metric);
      EXPECT_EQ(m["used"].get<double>(), want) << org << " " << metric;
      EXPECT_EQ(m["exceeded"].get<bool>(), want > limits.at(metric)) << org << " " << metric;
    }
    EXPECT_EQ(checked, 4) << org;
  }

  // Alerts: each threshold the final usage reached, once per subscribed organization; none
  // for a threshold it did not reach, none for an organization without subscriptions.
  using AlertKey = std::tuple<std::string, std::string, double>;  // org, metric, threshold
  std::map<AlertKey, int> want_alerts;
  int crossed = 0;
  int not_crossed = 0;
  for (int k = 0; k < kSubscribedOrgs; ++k) {
    const std::string org = OrgName(k);
    for (const auto& [metric, thresholds] : kSubscriptions) {
      for (double t : thresholds) {
        const bool reached = stream.expected[org].Of(metric) * 100.0 >= t * limits.at(metric);
        if (reached) want_alerts[{org, metric, t}] = 1;
        ++(reached ? crossed : not_crossed);
      }
    }
  }
  // The stream is built so that both cases occur; otherwise this test would prove less.
  EXPECT_GT(crossed, 0);
  EXPECT_GT(not_crossed, 0);
  testing::TopicReader alerts(bootstrap, "cloudmatrix.quota-alerts", kPartitions);
  std::map<AlertKey, int> seen_alerts;
  std::map<std::string, int> seen_ids;
  auto read_alerts = [&](int wait_ms) {
    for (const auto& m : alerts.Poll(wait_ms)) {
      const json alert = json::parse(m.value);
      const double t = alert["threshold"].get<double>();
      seen_alerts[{alert["organizationId"].get<std::string>(),
                   alert["metricType"].get<std::string>(), t}]++;
      seen_ids[alert["alertId"].get<std::string>()]++;
      EXPECT_EQ(m.key, alert["organizationId"].get<std::string>());
      EXPECT_GE(alert["used"].get<double>() * 100.0, t * alert["limit"].get<double>()) << m.value;
    }
    return seen_alerts == want_alerts;
  };
  EXPECT_TRUE(WaitFor([&] { return read_alerts(200); }, 60s, 200ms));
  read_alerts(1000);  // nothing more may follow
  for (const auto& [key, count] : seen_alerts) {
    const auto& [org, metric, t] = key;
    EXPECT_EQ(count, want_alerts.contains(key) ? 1 : 0) << org << " " << metric << " " << t;
  }
  for (const auto& [key, count] : want_alerts)
    EXPECT_TRUE(seen_alerts.contains(key)) << std::get<0>(key) << " " << std::get<1>(key) << " "
                                           << std::get<2>(key) << " never alerted";
  for (const auto& [id, count] : seen_ids) EXPECT_EQ(count, 1) << "alertId " << id;
  std::cout << seen_ids.size() << " alerts for " << crossed << " crossed thresholds, "
            << not_crossed << " not crossed\n";

  // Each conflicting repeat is in the DLQ once, by its input position.
  testing::TopicReader dlq(bootstrap, "cloudmatrix.dlq", kPartitions);
  std::map<std::string, int> dead;  // partition/offset of the input record
  auto read_dlq = [&](int wait_ms) {
    for (const auto& m : dlq.Poll(wait_ms)) {
      std::string reason, position;
      for (const auto& [name, value] : m.headers) {
        if (name == "dlq-reason") reason = value;
        if (name == "dlq-partition" || name == "dlq-offset") position += value + "/";
      }
      EXPECT_NE(reason.find("already recorded with different content"), std::string::npos)
          << reason;
      dead[position]++;
    }
    return static_cast<int>(dead.size()) == stream.conflicts;
  };
  EXPECT_TRUE(WaitFor([&] { return read_dlq(200); }, 30s, 200ms))
      << dead.size() << " of " << stream.conflicts;
  read_dlq(1000);
  for (const auto& [position, count] : dead) EXPECT_EQ(count, 1) << "DLQ input " << position;

  // The events that landed away from their organization's partition were re-produced to it
  // once each, and only those.
  testing::TopicReader events(bootstrap, kEventsTopic, kPartitions);
  std::map<std::string, int> copies_of;  // "<partition>/<offset>" first landed -> copies
  std::set<std::string> misrouted_at;    // "<partition>/<offset>" of each misrouted event
  int misrouted = 0;
  auto read_events = [&](int wait_ms) {
    for (const auto& m : events.Poll(wait_ms)) {
      const bool owner = m.partition == topology::PartitionForKey(m.key, kPartitions);
      std::string from;
      for (const auto& [name, value] : m.headers)
        if (name == "cm-rerouted-from") from = value;
      if (!from.empty()) {
        copies_of[from]++;
        EXPECT_TRUE(owner) << m.key << " re-produced to partition " << m.partition;
        EXPECT_TRUE(Stream::ProducedByCrc32(m.key)) << m.key;
      } else if (!owner) {
        ++misrouted;
        misrouted_at.insert(std::to_string(m.partition) + "/" + std::to_string(m.offset));
        EXPECT_TRUE(Stream::ProducedByCrc32(m.key)) << m.key;
      }
    }
    return misrouted > 0 && static_cast<int>(copies_of.size()) == misrouted;
  };
  EXPECT_TRUE(WaitFor([&] { return read_events(500); }, 60s, 200ms))
      << misrouted << " misrouted, " << copies_of.size() << " re-produced";
  read_events(1000);  // nothing more may follow
  EXPECT_EQ(static_cast<int>(copies_of.size()), misrouted);
  for (const auto& at : misrouted_at)
    EXPECT_TRUE(copies_of.contains(at))
        << "the misrouted event at " << at << " was not re-produced";
  for (const auto& [from, count] : copies_of) EXPECT_EQ(count, 1) << "copies of " << from;
  std::cout << misrouted << " events landed away from their organization's partition\n";

  // SIGTERM is a clean shutdown: final commit, tasks closed, exit status 0.
  for (int status : {a.process->Kill(SIGTERM), b.process->Kill(SIGTERM), broker.Kill(SIGTERM)}) {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  }
  // Under the asan preset the processes report memory and UB errors into their logs.
  for (const std::string& log : {a.process->Log(), b.process->Log(), broker.Log()}) {
    EXPECT_EQ(log.find("Sanitizer"), std::string::npos) << log.substr(log.find("Sanitizer"), 2000);
    EXPECT_EQ(log.find("runtime error:"), std::string::npos);
  }
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cm
