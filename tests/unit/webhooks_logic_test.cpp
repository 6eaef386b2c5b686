// The webhooks application's pure parts: backoff, circuit breaker, latency histogram, event
// matching and the checks of endpoint fields.
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "processors/webhooks/circuit_breaker.h"
#include "processors/webhooks/event_catalog.h"
#include "processors/webhooks/latency_histogram.h"
#include "processors/webhooks/webhook_sender.h"
#include "processors/webhooks/webhook_signature.h"
#include "processors/webhooks/webhooks_commands.h"
#include "topology/common/backoff.h"

namespace cm::webhooks {
namespace {

using nlohmann::json;

TEST(WebhooksBackoffTest, DoublesFromOneSecondAndStopsAtOneHour) {
  const RetryPolicy p;
  for (int n = 1; n <= 20; ++n) {
    const int64_t ceiling = std::min<int64_t>(1000LL << (n - 1), 3'600'000);
    const int64_t d =
        topology::ExponentialBackoffMs(p.base_delay_ms, p.max_delay_ms, n, p.jitter, "dlv-1");
    EXPECT_LE(d, ceiling) << "retry " << n;
    EXPECT_GE(d, static_cast<int64_t>(static_cast<double>(ceiling) * (1 - p.jitter)))
        << "retry " << n;
  }
}

TEST(WebhooksBackoffTest, JitterIsDeterministicPerDeliveryAndSpreadsDeliveries) {
  std::set<int64_t> delays;
  for (int i = 0; i < 50; ++i) {
    const std::string key = "dlv-" + std::to_string(i);
    const int64_t a = topology::ExponentialBackoffMs(1000, 3'600'000, 5, 0.2, key);
    EXPECT_EQ(a, topology::ExponentialBackoffMs(1000, 3'600'000, 5, 0.2, key));
    delays.insert(a);
  }
  EXPECT_GT(delays.size(), 40u) << "deliveries that failed together retry at different times";
}

CircuitPolicy Policy() { return CircuitPolicy{3, 10'000, 2}; }

TEST(WebhooksCircuitTest, ClosedOpensAfterConsecutiveFailuresOnly) {
  CircuitBreaker c;
  c.OnFailure(Policy(), "d1", 1000);
  c.OnFailure(Policy(), "d2", 1001);
  c.OnSuccess(Policy(), "d3", 1002);  // not consecutive any more
  c.OnFailure(Policy(), "d4", 1003);
  c.OnFailure(Policy(), "d5", 1004);
  EXPECT_EQ(c.state(), CircuitBreaker::State::kClosed);
  c.OnFailure(Policy(), "d6", 1005);
  EXPECT_EQ(c.state(), CircuitBreaker::State::kOpen);
  EXPECT_EQ(c.half_open_at_ms(), 11'005);
}

TEST(WebhooksCircuitTest, OpenMakesDeliveriesWaitUntilTheCoolDown) {
  CircuitBreaker c;
  for (int i = 0; i < 3; ++i) c.OnFailure(Policy(), "d", 0);
  auto a = c.Admit(Policy(), "d7", 5000);
  EXPECT_FALSE(a.send);
  EXPECT_EQ(a.retry_at_ms, 10'000);
  EXPECT_EQ(c.state(), CircuitBreaker::State::kOpen);
}

TEST(WebhooksCircuitTest, HalfOpenAfterTheCoolDownLetsOneProbeThroughAtATime) {
  CircuitBreaker c;
  for (int i = 0; i < 3; ++i) c.OnFailure(Policy(), "d", 0);
  EXPECT_TRUE(c.Admit(Policy(), "probe", 10'000).send);
  EXPECT_EQ(c.state(), CircuitBreaker::State::kHalfOpen);
  EXPECT_TRUE(c.Admit(Policy(), "probe", 10'001).send) << "the probe itself may go again";
  auto other = c.Admit(Policy(), "other", 10'002);
  EXPECT_FALSE(other.send);
  EXPECT_FALSE(other.retry_at_ms) << "it waits for the probe's outcome, not for a time";
  c.Release("probe");
  EXPECT_TRUE(c.Admit(Policy(), "other", 10'003).send) << "a released slot takes another probe";
}

TEST(WebhooksCircuitTest, HalfOpenClosesAfterEnoughSuccessfulProbes) {
  CircuitBreaker c;
  for (int i = 0; i < 3; ++i) c.OnFailure(Policy(), "d", 0);
  ASSERT_TRUE(c.Admit(Policy(), "p1", 10'000).send);
  c.OnSuccess(Policy(), "p1", 10'010);
  EXPECT_EQ(c.state(), CircuitBreaker::State::kHalfOpen);
  ASSERT_TRUE(c.Admit(Policy(), "p2", 10'020).send);
  c.OnSuccess(Policy(), "p2", 10'030);
  EXPECT_EQ(c.state(), CircuitBreaker::State::kClosed);
  EXPECT_EQ(c.failure_count(), 0);
  EXPECT_TRUE(c.Admit(Policy(), "any", 10'040).send);
}

TEST(WebhooksCircuitTest, HalfOpenFailureReopensForAnotherCoolDown) {
  CircuitBreaker c;
  for (int i = 0; i < 3; ++i) c.OnFailure(Policy(), "d", 0);
  ASSERT_TRUE(c.Admit(Policy(), "p1", 10'000).send);
  c.OnFailure(Policy(), "p1", 10'500);
  EXPECT_EQ(c.state(), CircuitBreaker::State::kOpen);
  EXPECT_EQ(c.half_open_at_ms(), 20'500);
  EXPECT_FALSE(c.Admit(Policy(), "p2", 20'000).send);
}

TEST(WebhooksCircuitTest, StateSurvivesItsJsonAndShowsTheSeedsFields) {
  CircuitBreaker c;
  for (int i = 0; i < 3; ++i) c.OnFailure(Policy(), "d", 1'800'000'000'000);
  ASSERT_TRUE(c.Admit(Policy(), "probe", 1'800'000'010'000).send);
  CircuitBreaker back = CircuitBreaker::FromJson(json::parse(c.ToJson().dump()));
  EXPECT_EQ(back.ToJson(), c.ToJson());
  json seeds = back.ToCircuitState("org~w1");
  for (const char* field : {"webhookId", "state", "failureCount", "successCount", "lastFailure",
                            "openedAt", "halfOpenAt"})
    EXPECT_TRUE(seeds.contains(field)) << field;
  EXPECT_EQ(seeds["state"], "half_open");
  EXPECT_EQ(seeds["openedAt"], "2027-01-15T08:00:00.000Z");
  back.Reset();
  EXPECT_EQ(back.ToCircuitState("x")["state"], "closed");
  EXPECT_TRUE(back.ToCircuitState("x")["openedAt"].is_null());
}

TEST(WebhooksLatencyHistogramTest, PercentilesAreWithinTenPercent) {
  LatencyHistogram h;
  for (int ms = 1; ms <= 1000; ++ms) h.Add(ms, ms % 10 != 0, ms % 10 != 0 ? "" : "http_5xx");
  EXPECT_EQ(h.count(), 1000);
  EXPECT_EQ(h.successes(), 900);
  EXPECT_NEAR(h.Average(), 500.5, 1e-9);
  EXPECT_GE(h.Quantile(0.95), 950);
  EXPECT_LE(h.Quantile(0.95), 950 * 1.1);
  EXPECT_GE(h.Quantile(0.99), 990);
  EXPECT_LE(h.Quantile(0.99), 1000) << "never above the largest latency seen";
  EXPECT_EQ(h.errors().at("http_5xx"), 100);
  LatencyHistogram back = LatencyHistogram::FromJson(json::parse(h.ToJson().dump()));
  back.Merge(h);
  EXPECT_EQ(back.count(), 2000);
  EXPECT_DOUBLE_EQ(back.Quantile(0.95), h.Quantile(0.95));
}

TEST(WebhooksEventMatchingTest, StarExactAndFamilyWildcards) {
  EXPECT_TRUE(Matches(json::array({"*"}), "anything.at_all"));
  EXPECT_TRUE(Matches(json::array({"member.added"}), "member.added"));
  EXPECT_FALSE(Matches(json::array({"member.added"}), "member.removed"));
  EXPECT_TRUE(Matches(json::array({"team.*"}), "team.moved"));
  EXPECT_FALSE(Matches(json::array({"team.*"}), "teams.created"));
  EXPECT_FALSE(Matches(json::array({"team.*"}), "team"));
  EXPECT_FALSE(Matches(json::array(), "team.created"));
}

TEST(WebhooksEventMatchingTest, SubscriptionsAreCheckedAgainstTheCatalog) {
  EXPECT_FALSE(CheckSubscriptions(json::array({"*"})));
  EXPECT_FALSE(CheckSubscriptions(json::array({"quota.threshold_crossed", "document.*"})));
  EXPECT_TRUE(CheckSubscriptions(json::array()));
  EXPECT_TRUE(CheckSubscriptions(json::array({"document.exploded"})));
  EXPECT_TRUE(CheckSubscriptions(json::array({"nosuchfamily.*"})));
  EXPECT_TRUE(CheckSubscriptions(json::array({"team.created", "team.created"})));
  EXPECT_TRUE(CheckSubscriptions(json::array({7})));
  EXPECT_TRUE(CheckSubscriptions(json("*")));
}

TEST(WebhooksFieldChecksTest, UrlsMustBeHttpsWithAHostAndNoCredentials) {
  WebhooksOptions o;
  EXPECT_FALSE(CheckUrl("https://hooks.example.com/in?x=1", o));
  EXPECT_TRUE(CheckUrl("http://hooks.example.com/in", o));
  o.allow_http = true;
  EXPECT_FALSE(CheckUrl("http://hooks.example.com/in", o));
  EXPECT_TRUE(CheckUrl("ftp://hooks.example.com/", o));
  EXPECT_TRUE(CheckUrl("https://", o));
  EXPECT_TRUE(CheckUrl("https://user:pw@hooks.example.com/", o));
  EXPECT_TRUE(CheckUrl("https://hooks.example.com/a b", o));
  EXPECT_TRUE(CheckUrl("https://hooks.example.com/#frag", o));
  EXPECT_TRUE(CheckUrl("https://hooks.example.com/" + std::string(3000, 'a'), o));
  EXPECT_TRUE(CheckUrl(json(42), o));
}

TEST(WebhooksFieldChecksTest, CustomHeadersRefuseHopByHopAndSignatureNames) {
  WebhooksOptions o;
  EXPECT_FALSE(CheckHeaders({{"X-Tenant", "a"}, {"Authorization", "Bearer t"}}, o));
  for (const char* name : {"Connection", "transfer-encoding", "Upgrade", "Host", "Content-Length",
                           "webhook-signature", "Webhook-Id", "webhook-timestamp", "TE"})
    EXPECT_TRUE(CheckHeaders({{name, "x"}}, o)) << name;
  EXPECT_TRUE(CheckHeaders({{"X-A", "line\r\nInjected: 1"}}, o));
  EXPECT_TRUE(CheckHeaders({{"Bad Name", "x"}}, o));
  EXPECT_TRUE(CheckHeaders({{"X-A", 5}}, o));
  EXPECT_TRUE(CheckHeaders({{"X-A", "a"}, {"x-a", "b"}}, o)) << "the same name twice";
  EXPECT_TRUE(CheckHeaders(json::array(), o));
}

TEST(WebhooksSenderTest, ComposedRequestsCarryVerifiableSignaturesOfEverySecret) {
  DeliveryJob job;
  job.delivery_id = "org~dabc";
  job.body = R"({"id":"org~dabc"})";
  job.headers = {{"X-Tenant", "t1"}};
  job.secrets = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", NewWebhookSecret()};
  auto r = WebhookSender::Compose(job, 1'700'000'000);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::map<std::string, std::string> h(r->headers.begin(), r->headers.end());
  EXPECT_EQ(h["webhook-id"], "org~dabc");
  EXPECT_EQ(h["webhook-timestamp"], "1700000000");
  EXPECT_EQ(h["Content-Type"], "application/json");
  EXPECT_EQ(h["X-Tenant"], "t1");
  for (const auto& secret : job.secrets) {
    EXPECT_TRUE(VerifyWebhook(secret, job.delivery_id, h["webhook-timestamp"],
                              h["webhook-signature"], job.body, 1'700'000'010)
                    .ok())
        << "each secret verifies on its own: receivers switch at their pace";
  }
  EXPECT_FALSE(VerifyWebhook(NewWebhookSecret(), job.delivery_id, h["webhook-timestamp"],
                             h["webhook-signature"], job.body, 1'700'000'010)
                   .ok());
}

TEST(WebhooksSenderTest, OutcomeRecordsRoundTrip) {
  AttemptOutcome o;
  o.organization = "org";
  o.webhook_id = "org~w1";
  o.delivery_id = "org~d1";
  o.attempt = 3;
  o.attempted_at_ms = 1'800'000'000'000;
  o.response.status = 429;
  o.response.response_time_ms = 17;
  o.response.retry_after_ms = 5000;
  auto back = AttemptOutcome::FromJson(o.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->attempt, 3);
  EXPECT_EQ(back->response.status, 429);
  EXPECT_EQ(back->response.retry_after_ms, 5000);
  o.response = {};
  o.response.failure = TransportFailure::kTls;
  back = AttemptOutcome::FromJson(o.ToJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->response.failure, TransportFailure::kTls);
  EXPECT_FALSE(AttemptOutcome::FromJson(R"({"deliveryId":"x"})").ok());
  EXPECT_FALSE(AttemptOutcome::FromJson("not json").ok());
}

// A transport that holds every request until released.
class GateTransport final : public WebhookTransport {
 public:
  DeliveryResponse Send(const DeliveryRequest&) override {
    std::unique_lock lock(mu_);
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    DeliveryResponse r;
    r.status = 200;
    return r;
  }
  void WaitEntered(int n) {
    std::unique_lock lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(10), [&] { return entered_ >= n; }));
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int entered_ = 0;
  bool open_ = false;
};

class NullLog final : public AttemptLog {
 public:
  void Append(const std::string&, const std::string&, Appended appended) override {
    appended(state::Status::OK());
  }
};

TEST(WebhooksSenderTest, BoundsInFlightPerEndpointAndInAllAndNeverSendsADeliveryTwice) {
  auto gate = std::make_unique<GateTransport>();
  GateTransport* g = gate.get();
  WebhookSender sender(std::move(gate), std::make_unique<NullLog>(), WebhookSenderOptions{4, 2, 3});
  auto job = [](const std::string& webhook, const std::string& delivery) {
    DeliveryJob j;
    j.webhook_id = webhook;
    j.delivery_id = delivery;
    j.secrets = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};
    return j;
  };
  using H = WebhookSender::Handover;
  // A batch admits against the limits as it found them and what it holds: two to w1, then
  // w1 is busy; one to w2; then the sender's capacity (3) is reached.
  WebhookSender::Batch first = sender.OpenBatch(100);
  EXPECT_EQ(first.room(), 3u);
  EXPECT_EQ(first.Add(job("w1", "d1")), H::kAccepted);
  EXPECT_EQ(first.Add(job("w1", "d2")), H::kAccepted);
  EXPECT_FALSE(first.EndpointHasRoom("w1"));
  EXPECT_EQ(first.Add(job("w1", "d3")), H::kEndpointBusy);
  EXPECT_EQ(first.Add(job("w2", "d4")), H::kAccepted);
  EXPECT_EQ(first.Add(job("w3", "d5")), H::kFull);
  // A second batch opened before the first is handed over sees the same room: the sender
  // checks each job again at the hand-over.
  WebhookSender::Batch second = sender.OpenBatch(100);
  EXPECT_EQ(second.Add(job("w3", "d6")), H::kAccepted);
  EXPECT_EQ(sender.Submit(std::move(first)),
            (std::vector<H>{H::kAccepted, H::kAccepted, H::kAccepted}));
  EXPECT_EQ(sender.Submit(std::move(second)), std::vector<H>{H::kFull});
  g->WaitEntered(3);
  EXPECT_EQ(sender.counters().in_flight, 3u);
  EXPECT_EQ(sender.OpenBatch(100).room(), 0u);
  g->Open();
  sender.Stop();
  const WebhookSender::Counters c = sender.counters();
  EXPECT_EQ(c.succeeded, 3u);
  EXPECT_EQ(c.refused_endpoint_busy, 1u);
  EXPECT_EQ(c.refused_full, 2u);
  EXPECT_EQ(sender.OpenBatch(100).Add(job("w1", "d7")), H::kStopped);
}

// Holds each append's acknowledgement until the test releases it.
class HoldingLog final : public AttemptLog {
 public:
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Appended> held;
    bool released = false;  // acknowledges at once from then on
  };
  explicit HoldingLog(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}
  void Append(const std::string&, const std::string&, Appended appended) override {
    std::unique_lock lock(shared_->mu);
    if (shared_->released) {
      lock.unlock();
      appended(state::Status::OK());
      return;
    }
    shared_->held.push_back(std::move(appended));
    shared_->cv.notify_all();
  }
  // Acknowledges what is held and all that follows, so the sender can stop even when a test
  // failed halfway.
  static void ReleaseAll(Shared& s) {
    std::deque<Appended> held;
    {
      std::lock_guard lock(s.mu);
      s.released = true;
      held.swap(s.held);
    }
    for (auto& appended : held) appended(state::Status::OK());
  }
  // Waits for the next append and acknowledges it.
  static void AcknowledgeNext(Shared& s) {
    Appended appended;
    {
      std::unique_lock lock(s.mu);
      ASSERT_TRUE(s.cv.wait_for(lock, std::chrono::seconds(10), [&] { return !s.held.empty(); }));
      appended = std::move(s.held.front());
      s.held.pop_front();
    }
    appended(state::Status::OK());
  }
  static size_t Held(Shared& s) {
    std::unique_lock lock(s.mu);
    s.cv.wait_for(lock, std::chrono::seconds(10), [&] { return !s.held.empty(); });
    return s.held.size();
  }

 private:
  std::shared_ptr<Shared> shared_;
};

// A delivery is never in the sender twice: a second attempt handed over while the first's
// outcome is still being appended is refused.
TEST(WebhooksSenderTest, RefusesADeliveryWhoseLastOutcomeIsNotAppendedYet) {
  auto log = std::make_shared<HoldingLog::Shared>();
  auto gate = std::make_unique<GateTransport>();
  gate->Open();
  WebhookSender sender(std::move(gate), std::make_unique<HoldingLog>(log),
                       WebhookSenderOptions{2, 2, 8});
  struct Release {
    HoldingLog::Shared& log;
    ~Release() { HoldingLog::ReleaseAll(log); }
  } release{*log};  // destroyed before the sender, whose Stop waits for every append
  DeliveryJob j;
  j.webhook_id = "w1";
  j.delivery_id = "d1";
  j.secrets = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};
  using H = WebhookSender::Handover;
  auto hand_over = [&] {
    WebhookSender::Batch b = sender.OpenBatch(8);
    EXPECT_EQ(b.Add(j), H::kAccepted);  // the endpoint has room: only the sender knows better
    return sender.Submit(std::move(b));
  };
  EXPECT_EQ(hand_over(), std::vector<H>{H::kAccepted});
  ASSERT_EQ(HoldingLog::Held(*log), 1u);  // sent, its outcome not yet appended
  EXPECT_EQ(hand_over(), std::vector<H>{H::kBusy});
  EXPECT_EQ(sender.counters().refused_busy, 1u);
  HoldingLog::AcknowledgeNext(*log);
  EXPECT_EQ(hand_over(), std::vector<H>{H::kAccepted});
  HoldingLog::AcknowledgeNext(*log);
  sender.Stop();
  EXPECT_EQ(sender.counters().sent, 2u);
}

}  // namespace
}  // namespace cm::webhooks
