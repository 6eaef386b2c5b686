// Two `cmstream run --topology cloudmatrix` instances share the partitions of one `cmstream
// broker` and deliver webhooks to a flaky TLS receiver (WebhookSink: some requests answer 500,
// some reset the connection, some are slow, a few outlast the attempt's timeout). Sixteen
// organizations, two on each partition, have one or two endpoints; 5,000 events reach them,
// most as usage events in batches (POST /v1/usage/events) and every 20th through
// POST /v1/webhooks/events. One instance is killed with SIGKILL once a third of the deliveries
// are made, and restarted. At the end every (event, endpoint) pair was answered 2xx at least
// once, every copy of a pair carried the same webhook-id, every signature verifies with the
// endpoint's secret, and the delivery status of a sample of events says succeeded.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "child_process.h"
#include "processors/webhooks/webhook_signature.h"
#include "run_instance.h"
#include "test_credentials.h"
#include "topology/kafka/partitioner.h"
#include "webhook_sink.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ChildProcess;
using testing::RunInstance;
using testing::WaitFor;
using testing::WebhookSink;

constexpr int kPartitions = 8;
constexpr int kOrgsPerPartition = 2;
constexpr int kOrgs = kPartitions * kOrgsPerPartition;
constexpr int kEvents = 5000;
constexpr int kClients = 4;
constexpr int kChunk = 30;         // events of one organization sent together
constexpr int kEnqueueEvery = 20;  // every 20th event goes through POST /v1/webhooks/events

// The organizations: the first names that put exactly two on each partition, so every task
// (and so each instance) has some and no partition's changelogs grow much past the others'.
std::vector<std::string> OrgNames() {
  std::vector<std::string> orgs;
  std::vector<int> per_partition(kPartitions, 0);
  for (int i = 0; static_cast<int>(orgs.size()) < kOrgs; ++i) {
    std::string name = "worg-" + std::to_string(i);
    int p = topology::PartitionForKey(name, kPartitions);
    if (per_partition[p] < kOrgsPerPartition) {
      ++per_partition[p];
      orgs.push_back(name);
    }
  }
  return orgs;
}

std::string EventId(const std::string& org, int i) {
  return "evt-" + org + "-" + std::to_string(i);
}

// Sends until a real answer: a connection failure or 5xx (an owner restarting, a rebalance) is
// retried, on the other instance too, with the same Idempotency-Key (when there is one).
std::pair<int, json> Send(const std::vector<int>& ports, const std::string& method,
                          const std::string& path, const json& body, const std::string& key,
                          size_t first) {
  std::pair<int, json> answer{0, json()};
  size_t i = first;
  WaitFor(
      [&] {
        httplib::Client c("127.0.0.1", ports[i++ % ports.size()]);
        c.set_bearer_token_auth(testing::kTestAdminKey);
        c.set_connection_timeout(2);
        c.set_read_timeout(30, 0);
        httplib::Headers h;
        if (!key.empty()) h.emplace("Idempotency-Key", key);
        auto r =
            method == "POST" ? c.Post(path, h, body.dump(), "application/json") : c.Get(path, h);
        if (!r || r->status >= 500) return false;
        answer = {r->status, json::parse(r->body, nullptr, false)};
        return true;
      },
      120s, 100ms);
  return answer;
}

// What the receiver saw: per (event, endpoint) pair, the webhook-ids it came with, how often
// it came and whether one copy was answered 2xx in time.
struct Received {
  std::mutex mu;
  std::map<std::string, std::string> secrets;        // webhook id -> secret
  std::map<std::string, std::set<std::string>> ids;  // "event|webhook" -> webhook-id headers
  std::map<std::string, int> copies;
  std::map<std::string, int> answered_2xx;
  std::set<std::string> delivered;
  int bad_signatures = 0;
  int body_id_mismatches = 0;
  int unparsable = 0;
  std::vector<std::string> examples;  // of what went wrong, a few
};

TEST(WebhooksFailoverTest, SigkilledInstanceDeliversEveryEventToEveryEndpointWithOneId) {
  const auto started = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                            started)
        .count();
  };
  auto dir = testing::FreshTestDirectory("cm-e2e-webhooks");
  std::filesystem::create_directories(dir);

  // The flaky receiver. Requests are numbered as they come, over all endpoints. What it saw
  // outlives it: its workers may answer until it is destroyed.
  Received rx;
  std::atomic<int> numbered{0};
  WebhookSink sink;
  sink.SetResponder([&](const WebhookSink::Request& r) {
    const int n = numbered.fetch_add(1);
    WebhookSink::Reply reply = WebhookSink::Reply::Status(n % 2 ? 200 : 204);
    bool in_time = true;
    if (n % 7 == 3) {
      reply = WebhookSink::Reply::Status(500);
    } else if (n % 11 == 5) {
      reply = WebhookSink::Reply::Reset();
    } else if (n % 97 == 50) {
      reply = WebhookSink::Reply::Slow(2500ms);  // past --webhook-timeout: a timeout
      in_time = false;
    } else if (n % 13 == 8) {
      reply = WebhookSink::Reply::Slow(300ms);
    }
    const bool success = in_time && !reply.reset && reply.status / 100 == 2;
    json body = json::parse(r.body, nullptr, false);
    std::lock_guard lock(rx.mu);
    if (!body.is_object() || !body.contains("eventId") || !body.contains("webhookId")) {
      ++rx.unparsable;
      if (rx.examples.size() < 5) rx.examples.push_back("unparsable body: " + r.body);
      return reply;
    }
    const std::string webhook = body.value("webhookId", "");
    const std::string pair = body.value("eventId", "") + "|" + webhook;
    const std::string id = r.header("webhook-id");
    rx.ids[pair].insert(id);
    ++rx.copies[pair];
    if (success) {
      ++rx.answered_2xx[pair];
      rx.delivered.insert(pair);
    }
    if (body.value("id", "") != id) {
      ++rx.body_id_mismatches;
      if (rx.examples.size() < 5) rx.examples.push_back("body id is not webhook-id " + id);
    }
    auto secret = rx.secrets.find(webhook);
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    auto verified = secret == rx.secrets.end()
                        ? state::Status::InvalidArgument("no secret for webhook " + webhook)
                        : webhooks::VerifyWebhook(secret->second, id, r.header("webhook-timestamp"),
                                                  r.header("webhook-signature"), r.body, now, 3600);
    if (!verified.ok()) {
      ++rx.bad_signatures;
      if (rx.examples.size() < 5) rx.examples.push_back(pair + ": " + verified.message());
    }
    return reply;
  });

  const std::string info = (dir / "broker.json").string();
  const std::string parts = ":" + std::to_string(kPartitions);
  std::vector<std::string> broker_args = {testing::CmstreamBinary(), "broker", "--info-file", info};
  for (const char* t :
       {"cloudmatrix.events", "cloudmatrix.commands", "cloudmatrix.quota-alerts",
        "cloudmatrix.team-events", "cloudmatrix.dlq", "cloudmatrix.webhook-attempts"}) {
    broker_args.push_back("--topic");
    broker_args.push_back(t + parts);
  }
  ChildProcess broker(broker_args, (dir / "broker.log").string());
  broker.Start();
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(info); }, 20s)) << broker.Log();
  json endpoints;
  std::ifstream(info) >> endpoints;
  const std::string bootstrap = endpoints["bootstrap"];
  auto make = [&](const std::string& id) {
    RunInstance in{id, testing::FreePort(), nullptr};
    // The sink is on loopback with its own CA; retries and the circuit's cool-down are short
    // so that the flaky answers and the kill cost seconds, not minutes.
    in.process = std::make_unique<ChildProcess>(
        std::vector<std::string>{testing::CmstreamBinary(),
                                 "run",
                                 "--topology",
                                 "cloudmatrix",
                                 "--brokers",
                                 bootstrap,
                                 "--broker-admin",
                                 endpoints["admin"],
                                 "--app-id",
                                 "e2e-webhooks",
                                 "--instance-id",
                                 id,
                                 "--state-dir",
                                 (dir / id).string(),
                                 "--http",
                                 "127.0.0.1:" + std::to_string(in.port),
                                 "--webhook-allow-addresses=127.0.0.0/8",
                                 "--webhook-ca-file=" + sink.ca_file(),
                                 "--webhook-timeout=2s",
                                 "--webhook-backoff-base=200ms",
                                 "--webhook-backoff-max=2s",
                                 "--webhook-circuit-cooldown=1s"},
        (dir / (id + ".log")).string());
    in.process->Start();
    return in;
  };
  RunInstance a = make("a");
  RunInstance b = make("b");
  ASSERT_TRUE(WaitFor([&] { return a.Ready() && b.Ready(); }, 60s))
      << a.process->Log() << b.process->Log();
  const std::vector<int> ports = {a.port, b.port};

  // The endpoints: the first organization of each partition has two, the second one.
  const std::vector<std::string> orgs = OrgNames();
  std::map<std::string, std::vector<std::string>> webhooks_of;  // org -> webhook ids
  for (int k = 0; k < kOrgs; ++k) {
    const int count = k % kOrgsPerPartition == 0 ? 2 : 1;
    for (int n = 0; n < count; ++n) {
      const std::string& org = orgs[k];
      json body = {{"organizationId", org},
                   {"url", sink.url("/hooks/" + org + "/" + std::to_string(n))},
                   {"events", n == 0 ? json::array({"document.*"})
                                     : json::array({"document.created", "document.updated"})},
                   {"description", "e2e endpoint " + std::to_string(n)}};
      auto r =
          Send(ports, "POST", "/v1/webhooks", body, "register-" + org + "-" + std::to_string(n), k);
      ASSERT_EQ(r.first, 201) << r.second.dump();
      const std::string id = r.second.value("id", "");
      ASSERT_FALSE(id.empty()) << r.second.dump();
      std::lock_guard lock(rx.mu);
      rx.secrets[id] = r.second.value("secret", "");
      webhooks_of[org].push_back(id);
    }
  }
  size_t pairs = 0;
  std::vector<int> events_of(kOrgs, kEvents / kOrgs);
  for (int k = 0; k < kEvents % kOrgs; ++k) ++events_of[k];
  for (int k = 0; k < kOrgs; ++k) pairs += events_of[k] * webhooks_of[orgs[k]].size();

  // The clients: each sends the events of the organizations k with k % kClients == its index,
  // a chunk of each in turn: the usage events of the chunk in one batch, then the rest one by
  // one through enqueueEvent.
  std::atomic<int> sent{0};
  std::atomic<int> wrong_answers{0};
  std::mutex report;
  auto client = [&](int index) {
    for (int from = 0; from < kEvents / kOrgs + 1; from += kChunk) {
      for (int k = index; k < kOrgs; k += kClients) {
        const std::string& org = orgs[k];
        json batch = json::array();
        std::vector<int> enqueued;
        for (int i = from; i < std::min(from + kChunk, events_of[k]); ++i) {
          if (i % kEnqueueEvery == kEnqueueEvery - 1) {
            enqueued.push_back(i);
            continue;
          }
          batch.push_back({{"eventId", EventId(org, i)},
                           {"organizationId", org},
                           {"eventType", "document.created"},
                           {"userId", "u" + std::to_string(i % 5)},
                           {"resourceId", "doc-" + std::to_string(i)}});
        }
        if (!batch.empty()) {
          auto r = Send(ports, "POST", "/v1/usage/events", {{"events", batch}}, "", k + from);
          if (r.first != 202) {
            ++wrong_answers;
            std::lock_guard lock(report);
            ADD_FAILURE() << org << " usage batch at " << from << ": " << r.first << " "
                          << r.second.dump();
          }
          sent += static_cast<int>(batch.size());
        }
        for (int i : enqueued) {
          json body = {{"organizationId", org},
                       {"eventId", EventId(org, i)},
                       {"eventType", "document.updated"},
                       {"data", {{"documentId", "doc-" + std::to_string(i)}}}};
          auto r =
              Send(ports, "POST", "/v1/webhooks/events", body, "enqueue-" + EventId(org, i), k + i);
          if (r.first != 202 || r.second.value("queued", size_t{0}) != webhooks_of.at(org).size()) {
            ++wrong_answers;
            std::lock_guard lock(report);
            ADD_FAILURE() << org << " enqueue " << i << ": " << r.first << " " << r.second.dump();
          }
          ++sent;
        }
      }
    }
  };
  std::vector<std::jthread> clients;
  for (int i = 0; i < kClients; ++i) clients.emplace_back(client, i);

  auto delivered = [&] {
    std::lock_guard lock(rx.mu);
    return rx.delivered.size();
  };
  ASSERT_TRUE(WaitFor([&] { return delivered() >= pairs / 3; }, 120s))
      << delivered() << " of " << pairs << " pairs delivered; " << sent.load() << " events sent\n"
      << a.process->Log() << b.process->Log();
  std::cout << "kill of b at " << elapsed() << " s after " << delivered() << " of " << pairs
            << " pairs delivered, " << sent.load() << " events sent\n";
  b.process->Kill(SIGKILL);
  b.process->Start();  // same instance id and state directory
  ASSERT_TRUE(WaitFor([&] { return b.Ready(); }, 120s)) << b.process->Log();
  for (auto& c : clients) c.join();
  std::cout << "all events sent at " << elapsed() << " s\n";
  ASSERT_EQ(sent.load(), kEvents);
  ASSERT_EQ(wrong_answers.load(), 0);

  // Deliveries the killed instance had in flight are retried once their lease (the timeout
  // and the outcome grace, 32 s here) has passed.
  EXPECT_TRUE(WaitFor([&] { return delivered() >= pairs; }, 300s))
      << delivered() << " of " << pairs << " pairs delivered";
  std::cout << "all pairs delivered at " << elapsed() << " s\n";

  std::unique_lock lock(rx.mu);
  int missing = 0;
  for (int k = 0; k < kOrgs; ++k) {
    for (int i = 0; i < events_of[k]; ++i) {
      for (const auto& w : webhooks_of[orgs[k]]) {
        if (rx.delivered.contains(EventId(orgs[k], i) + "|" + w)) continue;
        if (++missing <= 5)
          ADD_FAILURE() << "not delivered: " << EventId(orgs[k], i) << " to " << w;
      }
    }
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(rx.copies.size(), pairs) << "the receiver got pairs that were not sent";
  int copies = 0, extra_copies = 0, extra_2xx = 0, two_ids = 0;
  for (const auto& [pair, n] : rx.copies) {
    copies += n;
    extra_copies += n - 1;
    if (rx.ids[pair].size() != 1 && ++two_ids <= 5)
      ADD_FAILURE() << pair << " came with " << rx.ids[pair].size() << " webhook-ids";
  }
  for (const auto& [pair, n] : rx.answered_2xx) extra_2xx += n - 1;
  EXPECT_EQ(two_ids, 0);
  EXPECT_EQ(rx.bad_signatures, 0);
  EXPECT_EQ(rx.body_id_mismatches, 0);
  EXPECT_EQ(rx.unparsable, 0);
  for (const auto& e : rx.examples) ADD_FAILURE() << e;
  std::cout << pairs << " pairs, " << copies << " requests (" << extra_copies
            << " retries or copies); duplicates answered 2xx more than once: " << extra_2xx << "\n";
  lock.unlock();  // the receiver may still get late copies

  // The delivery status agrees, for a sample: every endpoint's delivery succeeded. A copy the
  // killed instance sent may still be in flight in state until its lease ends.
  int checked = 0;
  for (int k = 0; k < kOrgs; ++k) {
    for (int i = k % 7; i < events_of[k]; i += 53) {
      const std::string org = orgs[k];
      const std::string event = EventId(org, i);
      json last;
      bool ok = WaitFor(
          [&] {
            auto r = Send(ports, "GET", "/v1/events/" + event + "/deliveries?org=" + org, json(),
                          "", static_cast<size_t>(i));
            last = r.second;
            if (r.first != 200 || !last.contains("summary")) return false;
            if (last["summary"].size() != webhooks_of[org].size()) return false;
            for (const auto& w : webhooks_of[org])
              if (last["summary"].value(w, json::object()).value("status", "") != "succeeded")
                return false;
            return true;
          },
          60s, 200ms);
      EXPECT_TRUE(ok) << event << ": " << last.dump();
      ++checked;
    }
  }
  std::cout << checked << " events' delivery status checked; " << elapsed() << " s in all\n";
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cm
