// RabbitMQ -> `cmstream bridge` -> Kafka -> `cmstream run --topology cloudmatrix` (usage), as
// separate processes on one `cmstream broker`. 100,000 usage events are published to RabbitMQ
// (persistent, with publisher confirms) while the bridge is killed with SIGKILL once it has
// acked part of them, and restarted. Every event must reach Kafka at least once (each eventId
// is on cloudmatrix.events), and the usage figures over HTTP must be exact: the usage
// application drops the duplicates a kill leaves (redelivered after Kafka had them) by eventId.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>
#include <unordered_set>

#include "amqp_publisher.h"
#include "child_process.h"
#include "kafka_clients.h"
#include "topology/common/wall_clock.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;

constexpr int kEvents = 100'000;
constexpr int kOrgs = 20;
constexpr int kPartitions = 8;
constexpr int64_t kDay = 86'400'000;

using testing::CmstreamBinary;

json GetJson(int port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_bearer_token_auth(cm::testing::kTestAdminKey);
  c.set_connection_timeout(1);
  c.set_read_timeout(10, 0);
  auto r = c.Get(path);
  if (!r || r->status != 200) return json::object();
  json j = json::parse(r->body, nullptr, false);
  return j.is_object() ? j : json::object();
}

// A counter of the bridge's /metrics, or -1 when it does not answer.
long BridgeMetric(int port, const std::string& name) {
  httplib::Client c("127.0.0.1", port);
  c.set_bearer_token_auth(cm::testing::kTestAdminKey);
  c.set_connection_timeout(1);
  auto r = c.Get("/metrics");
  if (!r || r->status != 200) return -1;
  std::smatch m;
  std::regex line(name + R"(\{[^}]*\} (\d+))");
  return std::regex_search(r->body, m, line) ? std::stol(m[1]) : -1;
}

struct Expected {
  long api_calls = 0;
  long compute_seconds = 0;
  long events = 0;
};

TEST(RabbitmqBridgeE2eTest, SigkilledBridgeLosesNoEventAndUsageFiguresAreExact) {
  auto dir =
      std::filesystem::temp_directory_path() / ("cm-e2e-bridge-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string info = (dir / "broker.json").string();
  const std::string exchange = testing::UniqueName("e2e-bridge-ex");
  const std::string queue = testing::UniqueName("e2e-bridge-q");

  ChildProcess broker({CmstreamBinary(), "broker", "--info-file", info, "--topic",
                       "cloudmatrix.events:" + std::to_string(kPartitions), "--topic",
                       "cloudmatrix.commands:" + std::to_string(kPartitions)},
                      (dir / "broker.log").string());
  broker.Start();
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(info); }, 20s)) << broker.Log();
  json endpoints;
  std::ifstream(info) >> endpoints;
  const std::string bootstrap = endpoints["bootstrap"];
  const std::string admin = endpoints["admin"];

  const int http = testing::FreePort();
  ChildProcess run(
      {CmstreamBinary(), "run", "--brokers", bootstrap, "--broker-admin", admin, "--app-id",
       "e2e-bridge", "--instance-id", "a", "--state-dir", (dir / "a").string(), "--http",
       "127.0.0.1:" + std::to_string(http), "--topology", "cloudmatrix"},
      (dir / "run.log").string());
  run.Start();
  ASSERT_TRUE(WaitFor([&] { return GetJson(http, "/ready").value("ready", false); }, 60s))
      << run.Log();

  const int bridge_http = testing::FreePort();
  const std::vector<std::string> bridge_argv = {
      CmstreamBinary(), "bridge",
      "--brokers",      bootstrap,
      "--broker-admin", admin,
      "--amqp-url",     testing::RabbitmqUrl(),
      "--exchange",     exchange,
      "--queue",        queue,
      "--http",         "127.0.0.1:" + std::to_string(bridge_http)};
  ChildProcess bridge(bridge_argv, (dir / "bridge.log").string());
  bridge.Start();

  // The events: half api.call, half compute.used with a quantity; all at one timestamp.
  const int64_t ts = topology::WallClockMs();
  std::vector<std::pair<std::string, std::string>> events;
  std::map<std::string, Expected> expected;
  for (int i = 0; i < kEvents; ++i) {
    std::string org = "org-" + std::to_string(i % kOrgs);
    json e = {{"eventId", "ev-" + std::to_string(i)},
              {"organizationId", org},
              {"userId", "user-" + std::to_string(i % 50)},
              {"timestamp", ts}};
    Expected& x = expected[org];
    ++x.events;
    if (i % 2 == 0) {
      e["eventType"] = "api.call";
      ++x.api_calls;
    } else {
      e["eventType"] = "compute.used";
      e["quantity"] = i % 7 + 1;
      x.compute_seconds += i % 7 + 1;
    }
    events.emplace_back(e["eventType"].get<std::string>(), e.dump());
  }
  testing::AmqpPublisher publisher;
  publisher.DeclareQueue(exchange, queue, {"api.#", "compute.#"});
  std::atomic<bool> published{false};
  std::thread producer([&] {
    publisher.PublishAll(exchange, events);
    published = true;
  });

  // Kill the bridge once it has acked part of the stream, then start it again.
  // (No ASSERT while the publishing thread runs: it must be joined.)
  bool part_acked = WaitFor(
      [&] { return BridgeMetric(bridge_http, "cmstream_bridge_messages_acked_total") >= 20'000; },
      90s);
  EXPECT_TRUE(part_acked) << bridge.Log();
  long acked_before_kill = BridgeMetric(bridge_http, "cmstream_bridge_messages_acked_total");
  bridge.Kill(SIGKILL);
  std::cout << "bridge killed after acking " << acked_before_kill << " of " << kEvents << "\n";
  EXPECT_LT(acked_before_kill, kEvents) << "the kill came after the end of the stream";
  bridge.Start();
  producer.join();
  ASSERT_TRUE(published);

  // Every event reached Kafka at least once.
  testing::TopicReader reader(bootstrap, "cloudmatrix.events", kPartitions);
  std::unordered_set<std::string> ids;
  size_t records = 0;
  bool all = WaitFor(
      [&] {
        for (auto& m : reader.Poll()) {
          ++records;
          json j = json::parse(m.value);
          EXPECT_EQ(m.key, j["organizationId"]);
          ids.insert(j["eventId"].get<std::string>());
        }
        return ids.size() == kEvents;
      },
      120s, 100ms);
  EXPECT_TRUE(all) << ids.size() << " of " << kEvents << " eventIds on cloudmatrix.events";
  std::cout << "cloudmatrix.events: " << records << " records for " << kEvents
            << " events (duplicates from the kill: " << records - ids.size() << ")\n";
  // The queue drains: the restarted bridge acked everything.
  EXPECT_TRUE(WaitFor([&] { return publisher.Ready(queue) == 0; }, 60s));

  // The usage figures are exact for every organization.
  const int64_t day = ts / kDay * kDay;
  std::map<std::string, json> totals;
  auto exact = [&] {
    for (const auto& [org, x] : expected) {
      json j = GetJson(http, "/v1/usage/orgs/" + org + "/metrics?granularity=day&startTime=" +
                                 std::to_string(day) + "&endTime=" + std::to_string(day + kDay));
      totals[org] = j.value("totals", json::object());
      const json& t = totals[org];
      if (t.value("api_calls", -1.0) != x.api_calls ||
          t.value("compute_seconds", -1.0) != x.compute_seconds ||
          t.value("events", -1.0) != x.events) {
        return false;
      }
    }
    return true;
  };
  bool figures = WaitFor(exact, 120s, 500ms);
  for (const auto& [org, x] : expected) {
    EXPECT_EQ(totals[org].value("api_calls", -1.0), x.api_calls) << org << totals[org].dump();
    EXPECT_EQ(totals[org].value("compute_seconds", -1.0), x.compute_seconds) << org;
    EXPECT_EQ(totals[org].value("events", -1.0), x.events) << org;
  }
  EXPECT_TRUE(figures);

  // SIGTERM is a clean shutdown for each process.
  for (ChildProcess* p : {&bridge, &run, &broker}) {
    int status = p->Kill(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  }
  for (const std::string& log : {bridge.Log(), run.Log(), broker.Log()}) {
    EXPECT_EQ(log.find("Sanitizer"), std::string::npos) << log.substr(log.find("Sanitizer"), 2000);
    EXPECT_EQ(log.find("runtime error:"), std::string::npos);
  }
  publisher.Delete(exchange, queue);
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

// `cmstream run --amqp-url` runs the bridge inside the instance: events published to RabbitMQ
// show up in the instance's own usage figures, a malformed message goes to the DLQ and is acked,
// the bridge's counters are on the instance's /metrics, and SIGTERM stops everything cleanly.
TEST(RabbitmqBridgeE2eTest, RunWithAmqpUrlBridgesIntoItsOwnApplication) {
  auto dir =
      std::filesystem::temp_directory_path() / ("cm-e2e-run-bridge-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string exchange = testing::UniqueName("e2e-run-bridge-ex");
  const std::string queue = testing::UniqueName("e2e-run-bridge-q");
  testing::AmqpPublisher publisher;
  publisher.DeclareQueue(exchange, queue, {"api.#", "document.#"});

  const int http = testing::FreePort();
  ChildProcess run(
      {CmstreamBinary(), "run", "--embedded", "--app-id", "e2e-run-bridge", "--state-dir",
       (dir / "state").string(), "--http", "127.0.0.1:" + std::to_string(http), "--partitions", "4",
       "--topology", "cloudmatrix", "--amqp-url", testing::RabbitmqUrl(), "--exchange", exchange,
       "--queue", queue},
      (dir / "run.log").string());
  run.Start();
  ASSERT_TRUE(WaitFor([&] { return GetJson(http, "/ready").value("ready", false); }, 60s))
      << run.Log();

  const int64_t ts = topology::WallClockMs();
  std::vector<std::pair<std::string, std::string>> messages;
  std::map<std::string, long> documents;
  for (int i = 0; i < 300; ++i) {
    std::string org = "org-" + std::to_string(i % 3);
    json e = {{"eventId", "run-ev-" + std::to_string(i)},
              {"organizationId", org},
              {"userId", "user-" + std::to_string(i % 5)},
              {"eventType", "document.created"},
              {"timestamp", ts}};
    ++documents[org];
    messages.emplace_back("document.created", e.dump());
  }
  messages.emplace_back("api.call", "{not json");
  publisher.PublishAll(exchange, messages);

  const int64_t day = ts / kDay * kDay;
  auto exact = [&] {
    for (const auto& [org, n] : documents) {
      json j = GetJson(http, "/v1/usage/orgs/" + org + "/metrics?granularity=day&startTime=" +
                                 std::to_string(day) + "&endTime=" + std::to_string(day + kDay));
      if (j.value("totals", json::object()).value("documents", -1.0) != n) return false;
    }
    return true;
  };
  EXPECT_TRUE(WaitFor(exact, 60s, 200ms)) << run.Log();
  EXPECT_TRUE(WaitFor(
      [&] { return BridgeMetric(http, "cmstream_bridge_messages_acked_total") == 301; }, 30s))
      << BridgeMetric(http, "cmstream_bridge_messages_acked_total");
  EXPECT_EQ(BridgeMetric(http, "cmstream_bridge_messages_dlq_total"), 1);
  EXPECT_TRUE(WaitFor([&] { return publisher.Ready(queue) == 0; }, 30s));

  int status = run.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  const std::string log = run.Log();
  EXPECT_EQ(log.find("Sanitizer"), std::string::npos) << log.substr(log.find("Sanitizer"), 2000);
  EXPECT_EQ(log.find("runtime error:"), std::string::npos);
  publisher.Delete(exchange, queue);
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cm
