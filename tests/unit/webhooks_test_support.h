#pragma once

// The webhooks topology alone on the topology test driver, with a real WebhookSender whose
// transport is a script (this layer tests the processor's decisions; the HTTP client is tested
// against a real TLS server in tests/integration), and whose attempt log collects the outcomes
// so that the test feeds them back as cloudmatrix.webhook-attempts records.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "processors/webhooks/webhook_sender.h"
#include "processors/webhooks/webhook_transport.h"
#include "processors/webhooks/webhooks_commands.h"
#include "processors/webhooks/webhooks_queries.h"
#include "processors/webhooks/webhooks_stores.h"
#include "processors/webhooks/webhooks_topology.h"
#include "topology/processor/command_results.h"
#include "topology/processor/topology.h"
#include "topology/testing/topology_test_driver.h"

namespace cm::webhooks::testing {

using nlohmann::json;

inline constexpr char kCommands[] = "cloudmatrix.commands";
inline constexpr char kEvents[] = "cloudmatrix.events";
inline constexpr char kTeamEvents[] = "cloudmatrix.team-events";
inline constexpr char kQuotaAlerts[] = "cloudmatrix.quota-alerts";
inline constexpr char kAttempts[] = "cloudmatrix.webhook-attempts";

// Answers every request with what `respond` says (default 200) and remembers the requests.
class ScriptedTransport final : public WebhookTransport {
 public:
  using Responder = std::function<DeliveryResponse(const DeliveryRequest&)>;
  struct Shared {
    std::mutex mu;
    Responder respond;
    std::vector<DeliveryRequest> requests;
  };
  explicit ScriptedTransport(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  DeliveryResponse Send(const DeliveryRequest& request) override {
    Responder respond;
    {
      std::lock_guard lock(shared_->mu);
      shared_->requests.push_back(request);
      respond = shared_->respond;
    }
    if (respond) return respond(request);
    DeliveryResponse ok;
    ok.status = 200;
    ok.response_time_ms = 12;
    return ok;
  }

 private:
  std::shared_ptr<Shared> shared_;
};

// Collects appended outcomes until the test takes them.
class CollectingLog final : public AttemptLog {
 public:
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::pair<std::string, std::string>> records;  // (organization, value)
    bool hold = false;                                         // acknowledgements wait in `held`
    std::vector<Appended> held;
  };
  explicit CollectingLog(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  // Acknowledged before the test sees it (unless held), so the sender has released the
  // delivery by the time the test feeds the outcome in and ticks again.
  void Append(const std::string& org, const std::string& value, Appended appended) override {
    std::unique_lock lock(shared_->mu);
    if (shared_->hold) {
      shared_->held.push_back(std::move(appended));
    } else {
      lock.unlock();
      appended(state::Status::OK());
      lock.lock();
    }
    shared_->records.emplace_back(org, value);
    shared_->cv.notify_all();
  }

 private:
  std::shared_ptr<Shared> shared_;
};

inline DeliveryResponse Status(int status, int64_t ms = 10) {
  DeliveryResponse r;
  r.status = status;
  r.response_time_ms = ms;
  return r;
}

class WebhooksHarness {
 public:
  explicit WebhooksHarness(WebhooksOptions options = {}, int32_t partitions = 3,
                           WebhookSenderOptions sender = {4, 16, 256})
      : transport_(std::make_shared<ScriptedTransport::Shared>()),
        log_(std::make_shared<CollectingLog::Shared>()) {
    options.own_source = true;
    options.allow_http = true;
    sender_ = std::make_shared<WebhookSender>(std::make_unique<ScriptedTransport>(transport_),
                                              std::make_unique<CollectingLog>(log_), sender);
    options.sender = sender_;
    options_ = options;
    topology::TopologyBuilder b;
    if (auto s = AddWebhooksTopology(b, options_); !s.ok()) throw std::runtime_error(s.ToString());
    auto built = b.Build("webhooks-test");
    if (!built.ok()) throw std::runtime_error(built.status().ToString());
    topology_ = std::make_unique<topology::Topology>(std::move(built).value());
    topology::TestDriverOptions o;
    o.partitions = partitions;
    o.wall_clock_start_ms = 1'800'000'000'000;
    auto d = topology::TopologyTestDriver::Create(*topology_, o);
    if (!d.ok()) throw std::runtime_error(d.status().ToString());
    driver_ = std::move(d).value();
  }
  ~WebhooksHarness() {
    AcknowledgeHeld();
    sender_->Stop();
  }

  topology::TopologyTestDriver& driver() { return *driver_; }
  const WebhooksOptions& options() const { return options_; }
  int64_t now() const { return driver_->wall_clock_ms(); }

  void Respond(ScriptedTransport::Responder respond) {
    std::lock_guard lock(transport_->mu);
    transport_->respond = std::move(respond);
  }
  std::vector<DeliveryRequest> Requests() {
    std::lock_guard lock(transport_->mu);
    return transport_->requests;
  }

  // Sends a command as the HTTP layer would and returns its result {status, body, ...}.
  json Send(const std::string& org, const std::string& type, json fields) {
    const std::string id = "cmd-" + std::to_string(++next_command_);
    fields["type"] = type;
    fields["commandId"] = id;
    fields["organizationId"] = org;
    driver_->PipeInput(kCommands, org, fields.dump(), now());
    auto r = topology::CommandResults::Read(*Views(org).command_results, id);
    return r ? *r : json();
  }

  // Registers an endpoint and returns its answer's body (with the secret).
  json Register(const std::string& org, json events = json::array({"*"}),
                const std::string& url = "https://hooks.example.com/in", json extra = {}) {
    json f = {{"webhookId", org + "~w" + Hex16(++next_webhook_)},
              {"url", url},
              {"events", std::move(events)},
              {"createdBy", "user-1"},
              {"secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}};
    if (extra.is_object()) f.update(extra);
    json r = Send(org, kRegister, f);
    EXPECT_EQ(r.value("status", 0), 201) << r.dump();
    return r["body"];
  }

  void Event(const std::string& org, const std::string& event_id,
             const std::string& type = "document.created", const char* topic = kEvents) {
    json e = {
        {"eventId", event_id}, {"organizationId", org}, {"eventType", type}, {"userId", "user-1"}};
    driver_->PipeInput(topic, org, e.dump(), now());
  }

  // One processQueue tick, then waits until `expect` outcomes came back and feeds them in.
  size_t Tick(size_t expect = 0, int64_t advance_ms = 0) {
    driver_->AdvanceWallClock(advance_ms > 0 ? advance_ms : options_.queue_interval_ms);
    return FeedOutcomes(expect);
  }
  size_t FeedOutcomes(size_t expect) {
    std::vector<std::pair<std::string, std::string>> records;
    {
      std::unique_lock lock(log_->mu);
      const bool done = log_->cv.wait_for(lock, std::chrono::seconds(10),
                                          [&] { return log_->records.size() >= expect; });
      EXPECT_TRUE(done) << "only " << log_->records.size() << " of " << expect << " outcomes";
      records.swap(log_->records);
    }
    for (const auto& [org, value] : records) driver_->PipeInput(kAttempts, org, value, now());
    return records.size();
  }

  // Ticks and feeds outcomes back until `total` outcomes came back (deliveries beyond the
  // sender's per-endpoint limit go on later ticks).
  size_t Pump(size_t total) {
    size_t fed = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (fed < total && std::chrono::steady_clock::now() < deadline) {
      driver_->AdvanceWallClock(options_.queue_interval_ms);
      std::vector<std::pair<std::string, std::string>> records;
      {
        std::unique_lock lock(log_->mu);
        log_->cv.wait_for(lock, std::chrono::milliseconds(500),
                          [&] { return !log_->records.empty(); });
        records.swap(log_->records);
      }
      for (const auto& [org, value] : records) driver_->PipeInput(kAttempts, org, value, now());
      fed += records.size();
    }
    EXPECT_EQ(fed, total);
    return fed;
  }

  // From now on the log acknowledges no append until AcknowledgeHeld: the sender keeps those
  // deliveries busy, as while an outcome is on its way to Kafka.
  void HoldAcknowledgements() {
    std::lock_guard lock(log_->mu);
    log_->hold = true;
  }
  void AcknowledgeHeld() {
    std::vector<AttemptLog::Appended> held;
    {
      std::lock_guard lock(log_->mu);
      log_->hold = false;
      held.swap(log_->held);
    }
    for (auto& appended : held) appended(state::Status::OK());
  }

  // Waits for `expect` outcomes and throws them away (lost with their sender).
  void DropOutcomes(size_t expect) {
    std::unique_lock lock(log_->mu);
    EXPECT_TRUE(log_->cv.wait_for(lock, std::chrono::seconds(10),
                                  [&] { return log_->records.size() >= expect; }));
    log_->records.clear();
  }

  WebhooksStoreViews Views(const std::string& org) {
    return WebhooksStoreViews::Live(driver_->TaskFor(kCommands, org).state());
  }
  WebhooksQueries Queries(const std::string& org) { return WebhooksQueries(Views(org)); }
  json Delivery(const std::string& org, const std::string& id) {
    auto d = Queries(org).GetDelivery(org, id);
    return d.ok() ? *d : json();
  }
  json Webhook(const std::string& org, const std::string& id) {
    auto w = Queries(org).GetWebhook(org, id);
    return w.ok() ? *w : json();
  }
  json Circuit(const std::string& org, const std::string& id) {
    auto c = Queries(org).GetCircuitState(org, id);
    return c.ok() ? *c : json();
  }
  // The one delivery of an event (to the org's only endpoint).
  json DeliveryOf(const std::string& org, const std::string& event_id) {
    auto s = Queries(org).GetEventDeliveryStatus(org, event_id);
    if (!s.ok() || s->at("deliveries").empty()) return json();
    return Delivery(org, s->at("deliveries")[0].value("id", ""));
  }

 private:
  static std::string Hex16(int n) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016x", n);
    return buf;
  }

  std::shared_ptr<ScriptedTransport::Shared> transport_;
  std::shared_ptr<CollectingLog::Shared> log_;
  std::shared_ptr<WebhookSender> sender_;
  WebhooksOptions options_;
  std::unique_ptr<topology::Topology> topology_;
  std::unique_ptr<topology::TopologyTestDriver> driver_;
  int next_command_ = 0;
  int next_webhook_ = 0;
};

}  // namespace cm::webhooks::testing
