// The webhooks application over HTTP, in process, as `cmstream run --topology cloudmatrix` wires
// it (usage_instance.h) over the embedded broker: endpoints through the routes, events from the
// usage route, enqueueEvent and the teams routes, deliveries by the real HTTP(S) client
// (bridges/http) to a real TLS sink (webhook_sink.h), outcomes through
// cloudmatrix.webhook-attempts.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "processors/cloudmatrix/webhook_attempt_log.h"
#include "processors/cloudmatrix/webhook_transport_http.h"
#include "processors/webhooks/webhook_sender.h"
#include "processors/webhooks/webhook_signature.h"
#include "topology/common/wall_clock.h"
#include "usage_instance.h"
#include "webhook_sink.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::WebhookSink;
using Reply = WebhookSink::Reply;

class WebhooksHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cm-it-webhooks-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto broker = testing::StartUsageBroker(2);
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
  }
  void TearDown() override {
    instance_.reset();
    if (sender_) sender_->Stop();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Starts the instance; `allow` is the address allow-list (loopback unless a test says not).
  void Start(webhooks::WebhooksOptions options = {}, const std::string& allow = "127.0.0.0/8") {
    http::DeliveryClientOptions client;
    auto policy = http::AddressPolicy::FromAllowList(allow);
    ASSERT_TRUE(policy.ok());
    client.policy = *policy;
    client.ca_file = sink_.ca_file();
    auto log =
        cloudmatrix::KafkaAttemptLog::Create(broker_->bootstrap_servers(), options.attempts_topic);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    sender_ = std::make_shared<webhooks::WebhookSender>(
        std::make_unique<cloudmatrix::HttpWebhookTransport>(client), std::move(log).value(),
        webhooks::WebhookSenderOptions{8, 4, 1024});
    options.sender = sender_;
    if (options.retry.base_delay_ms == RetryDefaults().base_delay_ms) {
      options.retry.base_delay_ms = 200;  // quick retries
      options.retry.max_delay_ms = 2000;
    }
    instance_ = std::make_unique<testing::UsageInstance>(
        *broker_, testing::UsageInstanceOptions{.application_id = "it-webhooks",
                                                .state_dir = (dir_ / "state").string(),
                                                .webhooks = options});
    auto started = instance_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
    key_ = Key("org-a",
               {"webhooks:read", "webhooks:write", "usage:write", "teams:read", "teams:write"});
  }
  static webhooks::RetryPolicy RetryDefaults() { return {}; }

  std::string Key(const std::string& org, std::vector<std::string> scopes) {
    json body = {{"organizationId", org}, {"scopes", scopes}, {"userId", "alice"}, {"name", "t"}};
    auto r = Call("POST", "/v1/admin/api-keys", body, testing::kTestAdminKey);
    EXPECT_EQ(r.first, 201) << r.second.dump();
    return r.second.value("key", "");
  }

  std::pair<int, json> Call(const std::string& method, const std::string& path, const json& body,
                            const std::string& key = "") {
    httplib::Client c("127.0.0.1", instance_->port());
    c.set_read_timeout(40, 0);
    httplib::Headers h = {{"Authorization", "Bearer " + (key.empty() ? key_ : key)}};
    const std::string text = body.is_null() ? "" : body.dump();
    httplib::Result r = method == "GET"     ? c.Get(path, h)
                        : method == "POST"  ? c.Post(path, h, text, "application/json")
                        : method == "PATCH" ? c.Patch(path, h, text, "application/json")
                                            : c.Delete(path, h, text, "application/json");
    if (!r) return {0, json()};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  json Register(json events = json::array({"*"}), const std::string& path = "/hook",
                json extra = json::object()) {
    extra["url"] = sink_.url(path);
    extra["events"] = std::move(events);
    auto r = Call("POST", "/v1/webhooks", extra);
    EXPECT_EQ(r.first, 201) << r.second.dump();
    return r.second;
  }

  std::pair<int, json> Enqueue(const std::string& event_id,
                               const std::string& type = "document.shared") {
    return Call("POST", "/v1/webhooks/events",
                {{"eventId", event_id}, {"eventType", type}, {"data", {{"n", event_id}}}});
  }

  // Waits until GET `path` answers 200 with a body `done` accepts; returns the last body.
  json Await(const std::string& path, const std::function<bool(const json&)>& done,
             std::chrono::milliseconds timeout = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    json last;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = Call("GET", path, nullptr);
      if (r.first == 200) {
        last = r.second;
        if (done(last)) return last;
      }
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << "timed out waiting on " << path << ": " << last.dump();
    return last;
  }
  // One sample of /metrics (name with its labels, as printed), or -1 when it is missing.
  double Metric(const std::string& series) {
    httplib::Client c("127.0.0.1", instance_->port());
    auto r =
        c.Get("/metrics", {{"Authorization", "Bearer " + std::string(testing::kTestAdminKey)}});
    if (!r || r->status != 200) return -1;
    std::istringstream lines(r->body);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
    }
    return -1;
  }

  json AwaitDelivery(const std::string& event_id, const std::string& status) {
    json s = Await("/v1/events/" + event_id + "/deliveries?org=org-a", [&](const json& j) {
      return !j["deliveries"].empty() && j["deliveries"][0].value("status", "") == status;
    });
    return s["deliveries"].empty() ? json() : s["deliveries"][0];
  }

  WebhookSink sink_;
  std::filesystem::path dir_;
  std::unique_ptr<testing::TestBroker> broker_;
  std::shared_ptr<webhooks::WebhookSender> sender_;
  std::unique_ptr<testing::UsageInstance> instance_;
  std::string key_;
};

TEST_F(WebhooksHttpTest, RegisterGetListUpdateAndDeleteEndpoints) {
  Start();
  json w = Register(json::array({"document.*"}), "/a", {{"description", "docs"}});
  const std::string id = w.value("id", "");
  ASSERT_EQ(id.rfind("org-a~w", 0), 0u) << w.dump();
  EXPECT_TRUE(w.value("secret", "").starts_with("whsec_"));
  auto got = Call("GET", "/v1/webhooks/" + id, nullptr);
  ASSERT_EQ(got.first, 200) << got.second.dump();
  EXPECT_FALSE(got.second.contains("secret"));
  EXPECT_EQ(got.second["description"], "docs");
  for (int i = 0; i < 3; ++i) Register();
  auto page = Call("GET", "/v1/orgs/org-a/webhooks?limit=3", nullptr);
  ASSERT_EQ(page.first, 200);
  EXPECT_EQ(page.second["total"], 4);
  EXPECT_EQ(page.second["hasMore"], true);
  auto rest =
      Call("GET",
           "/v1/orgs/org-a/webhooks?limit=3&cursor=" + page.second["nextCursor"].get<std::string>(),
           nullptr);
  EXPECT_EQ(rest.second["webhooks"].size(), 1u);
  EXPECT_EQ(rest.second["hasMore"], false);
  auto patched = Call("PATCH", "/v1/webhooks/" + id, {{"active", false}});
  ASSERT_EQ(patched.first, 200) << patched.second.dump();
  EXPECT_EQ(patched.second["active"], false);
  EXPECT_FALSE(patched.second.contains("secret"));
  auto rotated = Call("PATCH", "/v1/webhooks/" + id, {{"rotateSecret", true}});
  EXPECT_TRUE(rotated.second.value("secret", "").starts_with("whsec_"));
  EXPECT_NE(rotated.second["secret"], w["secret"]);
  auto deleted = Call("DELETE", "/v1/webhooks/" + id, nullptr);
  ASSERT_EQ(deleted.first, 200);
  EXPECT_EQ(deleted.second["deleted"], true);
  EXPECT_EQ(Call("GET", "/v1/webhooks/" + id, nullptr).first, 404);
  // Another organization's key sees none of it.
  const std::string other = Key("org-b", {"webhooks:read", "webhooks:write"});
  EXPECT_EQ(Call("GET", "/v1/webhooks/" + rest.second["webhooks"][0]["id"].get<std::string>(),
                 nullptr, other)
                .first,
            404);
  EXPECT_EQ(Call("GET", "/v1/orgs/org-a/webhooks", nullptr, other).first, 404);
}

TEST_F(WebhooksHttpTest, BadRegistrationsAre400NamingTheField) {
  Start();
  auto http_url =
      Call("POST", "/v1/webhooks", {{"url", "http://x.example.com"}, {"events", {"*"}}});
  EXPECT_EQ(http_url.first, 400);
  EXPECT_EQ(http_url.second["error"]["details"]["field"], "url");
  auto unknown = Call("POST", "/v1/webhooks", {{"url", sink_.url()}, {"events", {"no.such"}}});
  EXPECT_EQ(unknown.first, 400);
  EXPECT_EQ(unknown.second["error"]["details"]["field"], "events");
  auto hop = Call("POST", "/v1/webhooks",
                  {{"url", sink_.url()}, {"events", {"*"}}, {"headers", {{"Connection", "x"}}}});
  EXPECT_EQ(hop.first, 400);
  EXPECT_EQ(hop.second["error"]["details"]["field"], "headers");
  EXPECT_EQ(Call("POST", "/v1/webhooks", {{"url", sink_.url()}}).first, 400);
  EXPECT_EQ(Call("GET", "/v1/webhooks/not-an-id", nullptr).first, 404);
  EXPECT_EQ(
      Call("GET", "/v1/webhooks/org-a~w0000000000000000/health?startTime=yesterday", nullptr).first,
      400);
}

TEST_F(WebhooksHttpTest, AUsageEventIsDeliveredSignedOverTlsWithItsIdInHeaderAndBody) {
  Start();
  json w =
      Register(json::array({"document.created"}), "/hook", {{"headers", {{"X-Tenant", "t-1"}}}});
  json event = {{"eventId", "evt-usage-1"},
                {"organizationId", "org-a"},
                {"eventType", "document.created"},
                {"userId", "alice"},
                {"resourceId", "doc-1"}};
  auto posted = Call("POST", "/v1/usage/events", event);
  ASSERT_EQ(posted.first, 202) << posted.second.dump();
  ASSERT_TRUE(sink_.WaitForRequests(1, 20s));
  auto req = sink_.requests()[0];
  json body = json::parse(req.body);
  EXPECT_EQ(req.header("webhook-id"), body["id"]);
  EXPECT_EQ(body["type"], "document.created");
  EXPECT_EQ(body["data"]["resourceId"], "doc-1");
  EXPECT_EQ(req.header("X-Tenant"), "t-1");
  EXPECT_EQ(req.header("Content-Type"), "application/json");
  EXPECT_TRUE(webhooks::VerifyWebhook(w["secret"].get<std::string>(), req.header("webhook-id"),
                                      req.header("webhook-timestamp"),
                                      req.header("webhook-signature"), req.body,
                                      topology::WallClockMs() / 1000)
                  .ok());
  json d = AwaitDelivery("evt-usage-1", "succeeded");
  EXPECT_EQ(d["responseStatus"], 200);
  EXPECT_EQ(d["id"], body["id"]);
}

TEST_F(WebhooksHttpTest, EnqueueEventAnswersQueuedAndTheEndpoints) {
  Start();
  json docs = Register(json::array({"document.*"}));
  Register(json::array({"team.*"}));
  auto r = Enqueue("evt-enq-1");
  ASSERT_EQ(r.first, 202) << r.second.dump();
  EXPECT_EQ(r.second["queued"], 1);
  EXPECT_EQ(r.second["webhookIds"], json::array({docs["id"]}));
  AwaitDelivery("evt-enq-1", "succeeded");
  EXPECT_EQ(sink_.request_count(), 1u);
  EXPECT_EQ(Call("POST", "/v1/webhooks/events", {{"eventType", "x"}}).first, 400);
}

TEST_F(WebhooksHttpTest, ServerErrorsAreRetriedWithBackoffUntilSuccess) {
  Start();
  Register();
  sink_.Script({Reply::Status(500), Reply::Status(502)});
  Enqueue("evt-retry");
  json d = AwaitDelivery("evt-retry", "succeeded");
  EXPECT_EQ(d["attemptNumber"], 3);
  ASSERT_EQ(d["attempts"].size(), 3u);
  EXPECT_EQ(d["attempts"][0]["errorClass"], "http_5xx");
  auto reqs = sink_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].header("webhook-id"), reqs[2].header("webhook-id"));
  EXPECT_EQ(reqs[0].body, reqs[2].body) << "the same bytes on every attempt";
  EXPECT_GE(reqs[1].arrived - reqs[0].arrived, 150ms) << "a backoff between attempts";

  // processQueue's and the sender's counters (README "Webhooks", /metrics).
  EXPECT_EQ(Metric("cmstream_webhook_deliveries_created_total"), 1);
  EXPECT_EQ(Metric("cmstream_webhook_dispatched_total"), 3);
  EXPECT_EQ(Metric("cmstream_webhook_outcomes_applied_total{result=\"failure\"}"), 2);
  EXPECT_EQ(Metric("cmstream_webhook_outcomes_applied_total{result=\"success\"}"), 1);
  EXPECT_EQ(Metric("cmstream_webhook_sender_submitted_total"), 3);
  EXPECT_EQ(Metric("cmstream_webhook_sender_attempts_total{result=\"failure\"}"), 2);
  // The append's acknowledgement reaches the sender on the producer's own thread, which can be
  // a moment after the stream thread applied the outcome.
  EXPECT_TRUE(testing::WaitFor(
      [&] { return Metric("cmstream_webhook_sender_jobs{stage=\"appending\"}") == 0; }, 5s));
  EXPECT_EQ(Metric("cmstream_webhook_leases_expired_total"), 0);
  EXPECT_GT(Metric("cmstream_webhook_queue_ticks_total"), 0);
  // The sink keeps connections alive: the retries go out on the first connection.
  EXPECT_EQ(Metric("cmstream_webhook_connections_opened_total"), 1);
  EXPECT_EQ(Metric("cmstream_webhook_connections_reused_total"), 2);
  EXPECT_EQ(reqs[0].remote_port, reqs[2].remote_port);
}

TEST_F(WebhooksHttpTest, RetryAfterIsHonouredOn429) {
  Start();
  Register();
  sink_.Script({Reply::RetryAfter(429, "2")});
  Enqueue("evt-429");
  AwaitDelivery("evt-429", "succeeded");
  auto reqs = sink_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_GE(reqs[1].arrived - reqs[0].arrived, 1900ms);
}

TEST_F(WebhooksHttpTest, GoneDisablesTheEndpoint) {
  Start();
  json w = Register();
  sink_.Script({Reply::Status(410)});
  Enqueue("evt-gone");
  json d = AwaitDelivery("evt-gone", "failed");
  EXPECT_EQ(d["responseStatus"], 410);
  auto got = Call("GET", "/v1/webhooks/" + w["id"].get<std::string>(), nullptr);
  EXPECT_EQ(got.second["active"], false);
  auto again = Enqueue("evt-after-gone");
  EXPECT_EQ(again.second["queued"], 0);
}

TEST_F(WebhooksHttpTest, TimeoutsRedirectsAndResetsAreFailuresOfTheirClass) {
  webhooks::WebhooksOptions o;
  o.timeout_ms = 700;
  o.retry.max_attempts = 1;
  Start(o);
  json w = Register();
  sink_.Script({Reply::Slow(2000ms), Reply::Redirect("https://example.com/"), Reply::Reset()});
  Enqueue("evt-slow");
  EXPECT_EQ(AwaitDelivery("evt-slow", "failed")["errorClass"], "timeout");
  Enqueue("evt-redirect");
  EXPECT_EQ(AwaitDelivery("evt-redirect", "failed")["errorClass"], "redirect");
  Enqueue("evt-reset");
  EXPECT_EQ(AwaitDelivery("evt-reset", "failed")["errorClass"], "connection");
  auto health = Call("GET", "/v1/webhooks/" + w["id"].get<std::string>() + "/health", nullptr);
  ASSERT_EQ(health.first, 200) << health.second.dump();
  EXPECT_EQ(health.second["deliveriesInPeriod"], 3);
  EXPECT_EQ(health.second["successRate"], 0.0);
  std::set<std::string> classes;
  for (const auto& e : health.second["errorBreakdown"]) classes.insert(e["errorClass"]);
  EXPECT_EQ(classes, (std::set<std::string>{"connection", "redirect", "timeout"}));
}

TEST_F(WebhooksHttpTest, TheCircuitOpensDeliveriesWaitAndResetLetsThemGo) {
  webhooks::WebhooksOptions o;
  o.circuit = {2, 600'000, 1};
  Start(o);
  json w = Register();
  const std::string id = w["id"];
  std::atomic<bool> down = true;
  auto responder =
      sink_.Respond([&](const WebhookSink::Request&) { return Reply::Status(down ? 503 : 200); });
  Enqueue("evt-c1");
  Enqueue("evt-c2");
  json c = Await("/v1/webhooks/" + id + "/circuit",
                 [](const json& j) { return j.value("state", "") == "open"; });
  EXPECT_GE(c["failureCount"], 2);
  EXPECT_FALSE(c["openedAt"].is_null());
  EXPECT_FALSE(c["halfOpenAt"].is_null());
  const size_t sent = sink_.request_count();
  Enqueue("evt-c3");
  std::this_thread::sleep_for(1500ms);  // deliveries are due; none may go while it is open
  EXPECT_EQ(sink_.request_count(), sent);
  down = false;
  auto reset = Call("DELETE", "/v1/webhooks/" + id + "/circuit", nullptr);
  ASSERT_EQ(reset.first, 200) << reset.second.dump();
  EXPECT_EQ(reset.second["reset"], true);
  for (const char* e : {"evt-c1", "evt-c2", "evt-c3"}) AwaitDelivery(e, "succeeded");
}

TEST_F(WebhooksHttpTest, SendTestEventAndRetryDeliveryAnswerWithTheAttemptsResult) {
  webhooks::WebhooksOptions o;
  o.retry.max_attempts = 1;
  Start(o);
  json w = Register(json::array({"member.added"}));
  auto test = Call("POST", "/v1/webhooks/" + w["id"].get<std::string>() + "/test", json::object());
  ASSERT_EQ(test.first, 200) << test.second.dump();
  EXPECT_EQ(test.second["success"], true);
  EXPECT_EQ(test.second["statusCode"], 200);
  EXPECT_EQ(json::parse(sink_.requests().back().body)["type"], "webhook.test");

  sink_.Script({Reply::Status(500)});
  Call("POST", "/v1/webhooks/events",
       {{"eventId", "evt-manual"}, {"eventType", "member.added"}, {"data", json::object()}});
  json d = AwaitDelivery("evt-manual", "failed");
  auto retried =
      Call("POST", "/v1/deliveries/" + d["id"].get<std::string>() + "/retry", json::object());
  ASSERT_EQ(retried.first, 200) << retried.second.dump();
  EXPECT_EQ(retried.second["success"], true);
  EXPECT_EQ(retried.second["attemptNumber"], 2);
  EXPECT_EQ(Call("POST", "/v1/deliveries/org-a~d0000000000000000/retry", json::object()).first,
            404);
}

TEST_F(WebhooksHttpTest, TeamEventsArriveAsWebhooks) {
  Start();
  Register(json::array({"team.created", "member.added"}));
  auto team = Call("POST", "/v1/teams", {{"name", "Platform"}});
  ASSERT_EQ(team.first, 201) << team.second.dump();
  auto added = Call("POST", "/v1/teams/" + team.second["id"].get<std::string>() + "/members",
                    {{"userId", "bob"}, {"role", "member"}});
  ASSERT_EQ(added.first, 201) << added.second.dump();
  ASSERT_TRUE(
      sink_.WaitFor([](const std::vector<WebhookSink::Request>& r) { return r.size() >= 2; }, 20s));
  std::set<std::string> types;
  for (const auto& r : sink_.requests()) types.insert(json::parse(r.body)["type"]);
  EXPECT_TRUE(types.count("team.created"));
  EXPECT_TRUE(types.count("member.added"));
}

TEST_F(WebhooksHttpTest, LoopbackIsRefusedWithoutTheAllowList) {
  webhooks::WebhooksOptions o;
  o.retry.max_attempts = 1;
  Start(o, "");
  Register();
  Enqueue("evt-ssrf");
  json d = AwaitDelivery("evt-ssrf", "failed");
  EXPECT_EQ(d["errorClass"], "blocked_address");
  EXPECT_EQ(sink_.request_count(), 0u);
}

TEST_F(WebhooksHttpTest, PendingDeliveriesSurviveARestart) {
  Start();
  Register();
  std::atomic<bool> down = true;
  auto responder =
      sink_.Respond([&](const WebhookSink::Request&) { return Reply::Status(down ? 500 : 200); });
  Enqueue("evt-restart");
  ASSERT_TRUE(sink_.WaitForRequests(1, 20s));
  instance_->Stop();
  down = false;
  ASSERT_TRUE(instance_->Start().ok());
  json d = AwaitDelivery("evt-restart", "succeeded");
  EXPECT_GE(d["attemptNumber"], 2);
}

TEST_F(WebhooksHttpTest, ConcurrentDeliveriesKeepThePerEndpointLimitAndArriveOnce) {
  Start();
  std::mutex mu;
  std::map<std::string, int> in_flight, peak;
  auto responder = sink_.Respond([&](const WebhookSink::Request& r) {
    {
      std::lock_guard lock(mu);
      peak[r.path] = std::max(peak[r.path], ++in_flight[r.path]);
    }
    std::this_thread::sleep_for(20ms);
    std::lock_guard lock(mu);
    --in_flight[r.path];
    return Reply::Status(200);
  });
  for (int e = 0; e < 3; ++e) Register(json::array({"*"}), "/e" + std::to_string(e));
  constexpr int kEvents = 40;
  for (int i = 0; i < kEvents; ++i) ASSERT_EQ(Enqueue("evt-c-" + std::to_string(i)).first, 202);
  ASSERT_TRUE(sink_.WaitForRequests(3 * kEvents, 60s));
  std::set<std::pair<std::string, std::string>> pairs;
  for (const auto& r : sink_.requests()) pairs.insert({r.path, r.header("webhook-id")});
  EXPECT_EQ(pairs.size(), 3u * kEvents) << "each (event, endpoint) once in a clean run";
  std::lock_guard lock(mu);
  for (const auto& [path, n] : peak) EXPECT_LE(n, 4) << path << ": the per-endpoint limit";
}

TEST_F(WebhooksHttpTest, DeliveryHistoryFiltersAndDeleteCancelsWhatIsPending) {
  Start();
  json w = Register();
  const std::string id = w["id"];
  sink_.SetResponder([](const WebhookSink::Request& r) {
    return Reply::Status(json::parse(r.body)["eventId"] == "evt-h-bad" ? 500 : 200);
  });
  Enqueue("evt-h-1");
  Enqueue("evt-h-2");
  Enqueue("evt-h-bad");
  Await("/v1/webhooks/" + id + "/deliveries?status=succeeded",
        [](const json& j) { return j.value("total", 0) == 2; });
  // The failing one waits for its next retry (pending) between attempts (in_progress).
  Await("/v1/webhooks/" + id + "/deliveries?status=pending",
        [](const json& j) { return j.value("total", 0) == 1; });
  EXPECT_EQ(Call("GET", "/v1/webhooks/" + id + "/deliveries?status=weird", nullptr).first, 400);
  auto deleted = Call("DELETE", "/v1/webhooks/" + id, nullptr);
  ASSERT_EQ(deleted.first, 200);
  EXPECT_EQ(deleted.second["cancelledDeliveries"], 1);
  EXPECT_EQ(AwaitDelivery("evt-h-bad", "cancelled")["status"], "cancelled");
}

}  // namespace
}  // namespace cm
