// The webhooks processor on the topology test driver: endpoints, fan-out, attempts, retries,
// the circuit breaker and the queries, with the sender's outcomes fed back as records.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include "child_process.h"
#include "processors/webhooks/webhook_signature.h"
#include "state/key_codec.h"
#include "webhooks_test_support.h"

namespace cm::webhooks::testing {
namespace {

constexpr char kOrg[] = "org-a";

std::map<std::string, std::string> Headers(const DeliveryRequest& r) {
  return {r.headers.begin(), r.headers.end()};
}

TEST(WebhooksEndpointTest, RegisterShowsTheSecretOnceAndGetNever) {
  WebhooksHarness h;
  json w = h.Register(kOrg, json::array({"document.*"}));
  EXPECT_TRUE(w.value("secret", "").starts_with("whsec_"));
  EXPECT_EQ(w["events"], json::array({"document.*"}));
  EXPECT_EQ(w["active"], true);
  json got = h.Webhook(kOrg, w["id"]);
  EXPECT_EQ(got["url"], "https://hooks.example.com/in");
  EXPECT_FALSE(got.contains("secret"));
  EXPECT_FALSE(got.contains("secrets"));
  EXPECT_EQ(got["stats"]["totalDeliveries"], 0);
}

TEST(WebhooksEndpointTest, InvalidRegistrationsAreRefusedNamingTheField) {
  WebhooksHarness h;
  json base = {{"webhookId", std::string(kOrg) + "~w00000000000000aa"},
               {"url", "https://x.example.com"},
               {"events", json::array({"*"})},
               {"createdBy", "u"},
               {"secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}};
  for (auto [field, value] :
       std::vector<std::pair<std::string, json>>{{"url", "ftp://x"},
                                                 {"events", json::array({"no.such"})},
                                                 {"headers", {{"Connection", "close"}}},
                                                 {"secret", "plain"}}) {
    json f = base;
    f[field] = value;
    json r = h.Send(kOrg, kRegister, f);
    EXPECT_EQ(r.value("status", 0), 400) << field;
    EXPECT_EQ(r["body"]["error"]["details"]["field"], field) << r.dump();
  }
  json other = base;
  other["webhookId"] = "org-b~w00000000000000aa";
  EXPECT_EQ(h.Send(kOrg, kRegister, other).value("status", 0), 400)
      << "an id of another organization";
}

TEST(WebhooksEndpointTest, UpdateMergesFieldsAndKeepsTheRest) {
  WebhooksHarness h;
  json w = h.Register(kOrg, json::array({"*"}), "https://a.example.com",
                      {{"description", "first"}, {"headers", {{"X-Tenant", "t1"}}}});
  json r = h.Send(kOrg, kUpdate, {{"webhookId", w["id"]}, {"events", json::array({"team.*"})}});
  ASSERT_EQ(r.value("status", 0), 200) << r.dump();
  json got = h.Webhook(kOrg, w["id"]);
  EXPECT_EQ(got["events"], json::array({"team.*"}));
  EXPECT_EQ(got["description"], "first");
  EXPECT_EQ(got["headers"]["X-Tenant"], "t1");
  EXPECT_EQ(h.Send(kOrg, kUpdate, {{"webhookId", std::string(kOrg) + "~w0000000000000999"}})
                .value("status", 0),
            404);
}

TEST(WebhooksEndpointTest, ListPaginatesWithTotalAndHasMore) {
  WebhooksHarness h;
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.insert(h.Register(kOrg)["id"].get<std::string>());
  h.Register("org-b");
  std::set<std::string> seen;
  std::string cursor;
  int pages = 0;
  for (;;) {
    auto page = h.Queries(kOrg).ListWebhooks(kOrg, 2, cursor);
    ASSERT_TRUE(page.ok());
    EXPECT_EQ((*page)["total"], 5);
    for (const auto& w : (*page)["webhooks"]) seen.insert(w["id"].get<std::string>());
    ++pages;
    if (!(*page)["hasMore"].get<bool>()) break;
    cursor = (*page)["nextCursor"];
  }
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(pages, 3);
  EXPECT_FALSE(h.Queries(kOrg).ListWebhooks(kOrg, 2, "zz").ok());
}

TEST(WebhooksFanOutTest, EventsReachEveryMatchingActiveEndpointOnce) {
  WebhooksHarness h;
  json all = h.Register(kOrg, json::array({"*"}));
  json docs = h.Register(kOrg, json::array({"document.created"}));
  json teams = h.Register(kOrg, json::array({"team.*"}));
  json off = h.Register(kOrg, json::array({"*"}), "https://off.example.com", {{"active", false}});
  h.Register("org-b");
  h.Event(kOrg, "evt-1");
  h.Event(kOrg, "evt-1");  // the same event again: no second delivery
  h.Tick(2);
  auto requests = h.Requests();
  ASSERT_EQ(requests.size(), 2u);
  std::set<std::string> urls;
  for (const auto& r : requests) urls.insert(r.url);
  EXPECT_EQ(urls, (std::set<std::string>{"https://hooks.example.com/in"}));
  auto status = h.Queries(kOrg).GetEventDeliveryStatus(kOrg, "evt-1");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ((*status)["deliveries"].size(), 2u);
  EXPECT_TRUE((*status)["summary"].contains(all["id"].get<std::string>()));
  EXPECT_TRUE((*status)["summary"].contains(docs["id"].get<std::string>()));
  EXPECT_EQ((*status)["summary"][all["id"].get<std::string>()]["status"], "succeeded");
  (void)teams;
  (void)off;
}

// An event first reads how many endpoints its organization has (point reads, not a scan).
// The counts are kept by register and delete, and made again by one scan each time the task is
// opened, so endpoints written by a binary that kept no counts still receive.
class EndpointCountsTest : public ::testing::Test {
 protected:
  EndpointCountsTest()
      : h_(WebhooksOptions{}, 1) {}  // one partition: every organization in one task

  state::KeyValueStore& Endpoints() {
    return *h_.driver().TaskFor(kCommands, kOrg).state().key_value_store(kEndpointsStore);
  }
  std::optional<uint64_t> Count(const std::string& org) {
    auto v = Endpoints().Get(keys::EndpointCount(org));
    if (!v) return std::nullopt;
    return state::ReadUint64(*v);
  }
  // An endpoint for org as a binary without counts registers it (its key only), copied from
  // kOrg's endpoint `like`.
  std::string WriteEndpointWithoutCount(const std::string& org, const json& like) {
    const std::string id = org + "~w00000000000000ff";
    json e = json::parse(*Endpoints().Get(keys::Endpoint(kOrg, like["id"].get<std::string>())));
    e["id"] = id;
    e["organizationId"] = org;
    Endpoints().Put(keys::Endpoint(org, id), e.dump());
    return id;
  }
  void Reopen() {
    h_.driver().Commit();
    ASSERT_TRUE(h_.driver().Restart().ok());
  }

  WebhooksHarness h_;
};

TEST_F(EndpointCountsTest, FollowRegisterAndDelete) {
  json first = h_.Register(kOrg);
  json second = h_.Register(kOrg);
  h_.Register("org-b");
  EXPECT_EQ(Count(kOrg), 2u);
  EXPECT_EQ(Count("org-b"), 1u);
  EXPECT_TRUE(Endpoints().Get(keys::EndpointCountsComplete()).has_value());

  ASSERT_EQ(h_.Send(kOrg, kDelete, {{"webhookId", first["id"]}}).value("status", 0), 200);
  EXPECT_EQ(Count(kOrg), 1u);
  h_.Event(kOrg, "evt-1");
  h_.Tick(1);
  EXPECT_EQ(h_.Requests().size(), 1u);
  ASSERT_EQ(h_.Send(kOrg, kDelete, {{"webhookId", second["id"]}}).value("status", 0), 200);
  EXPECT_EQ(Count(kOrg), std::nullopt);
  h_.Event(kOrg, "evt-2");
  h_.Tick(0, 10'000);
  EXPECT_EQ(h_.Requests().size(), 1u);

  h_.Register(kOrg);
  EXPECT_EQ(Count(kOrg), 1u);
  h_.Event(kOrg, "evt-3");
  h_.Tick(1);
  EXPECT_EQ(h_.Requests().size(), 2u);
}

TEST_F(EndpointCountsTest, EndpointsWrittenWithoutCountsStillReceiveAfterTheTaskIsOpened) {
  json first = h_.Register(kOrg);
  json other = h_.Register("org-b");
  // While another binary owned the task: kOrg got a second endpoint, org-c its first, and
  // org-b lost its only one.
  WriteEndpointWithoutCount(kOrg, first);
  WriteEndpointWithoutCount("org-c", first);
  Endpoints().Delete(keys::Endpoint("org-b", other["id"].get<std::string>()));
  Reopen();

  h_.Event("org-c", "evt-1");
  h_.Tick(1);
  EXPECT_EQ(h_.Requests().size(), 1u);
  EXPECT_EQ(Count("org-c"), 1u);
  EXPECT_EQ(Count(kOrg), 2u);               // counted in the same pass
  EXPECT_EQ(Count("org-b"), std::nullopt);  // and this one removed
  h_.Event(kOrg, "evt-2");
  h_.Tick(2);
  EXPECT_EQ(h_.Requests().size(), 3u);
  h_.Event("org-b", "evt-3");
  h_.Tick(0, 10'000);
  EXPECT_EQ(h_.Requests().size(), 3u);
}

TEST_F(EndpointCountsTest, StateFromBeforeTheCountsIsCountedBeforeADelete) {
  json first = h_.Register(kOrg);
  json second = h_.Register(kOrg);
  Endpoints().Delete(keys::EndpointCount(kOrg));
  Endpoints().Delete(keys::EndpointCountsComplete());
  Reopen();

  // The first lookup after opening is the delete's: it counts both, then removes one.
  ASSERT_EQ(h_.Send(kOrg, kDelete, {{"webhookId", first["id"]}}).value("status", 0), 200);
  EXPECT_EQ(Count(kOrg), 1u);
  h_.Event(kOrg, "evt-1");
  h_.Tick(1);
  EXPECT_EQ(h_.Requests().size(), 1u);
  EXPECT_EQ(h_.DeliveryOf(kOrg, "evt-1").value("webhookId", ""), second["id"]);
}

TEST(WebhooksFanOutTest, TeamEventsAndQuotaAlertsArriveAsWebhooks) {
  WebhooksHarness h;
  h.Register(kOrg, json::array({"member.added", "quota.threshold_crossed"}));
  json team_event = {{"eventId", "tev_1"},
                     {"type", "member.added"},
                     {"organizationId", kOrg},
                     {"data", {{"teamId", "t"}, {"userId", "u"}}}};
  h.driver().PipeInput(kTeamEvents, kOrg, team_event.dump(), h.now());
  json alert = {{"eventId", "qa_1"},
                {"eventType", "quota.threshold_crossed"},
                {"organizationId", kOrg},
                {"metricType", "api_calls"},
                {"threshold", 80}};
  h.driver().PipeInput(kQuotaAlerts, kOrg, alert.dump(), h.now());
  h.Tick(2);
  auto requests = h.Requests();
  ASSERT_EQ(requests.size(), 2u);
  std::set<std::string> types;
  for (const auto& r : requests) {
    json body = json::parse(r.body);
    types.insert(body["type"].get<std::string>());
    if (body["type"] == "member.added") {
      EXPECT_EQ(body["data"]["userId"], "u");
    }
    if (body["type"] == "quota.threshold_crossed") {
      EXPECT_EQ(body["data"]["metricType"], "api_calls");
    }
  }
  EXPECT_EQ(types, (std::set<std::string>{"member.added", "quota.threshold_crossed"}));
}

TEST(WebhooksFanOutTest, DeliveryIdIsDeterministicAndInTheHeaderAndThePayload) {
  WebhooksHarness h;
  json w = h.Register(kOrg);
  h.Event(kOrg, "evt-7");
  h.Tick(1);
  auto requests = h.Requests();
  ASSERT_EQ(requests.size(), 1u);
  auto headers = Headers(requests[0]);
  json body = json::parse(requests[0].body);
  EXPECT_EQ(headers["webhook-id"], body["id"]);
  EXPECT_EQ(body["deliveryId"], body["id"]);
  EXPECT_EQ(body["eventId"], "evt-7");
  EXPECT_EQ(body["webhookId"], w["id"]);
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-7")["id"], body["id"]);
  EXPECT_TRUE(VerifyWebhook(w["secret"].get<std::string>(), headers["webhook-id"],
                            headers["webhook-timestamp"], headers["webhook-signature"],
                            requests[0].body, std::stoll(headers["webhook-timestamp"]))
                  .ok());
}

TEST(WebhooksAttemptTest, SuccessUpdatesTheDeliveryStatsAndHealth) {
  WebhooksHarness h;
  json w = h.Register(kOrg);
  h.Respond([](const DeliveryRequest&) { return Status(204, 42); });
  h.Event(kOrg, "evt-1");
  h.Tick(1);
  json d = h.DeliveryOf(kOrg, "evt-1");
  EXPECT_EQ(d["status"], "succeeded");
  EXPECT_EQ(d["attemptNumber"], 1);
  EXPECT_EQ(d["responseStatus"], 204);
  EXPECT_EQ(d["responseTimeMs"], 42);
  ASSERT_EQ(d["attempts"].size(), 1u);
  json stats = h.Webhook(kOrg, w["id"])["stats"];
  EXPECT_EQ(stats["totalDeliveries"], 1);
  EXPECT_EQ(stats["successfulDeliveries"], 1);
  EXPECT_EQ(stats["lastDeliveryStatus"], "succeeded");
  EXPECT_DOUBLE_EQ(stats["averageResponseTimeMs"].get<double>(), 42.0);
}

TEST(WebhooksAttemptTest, FailuresRetryWithExponentialBackoffUntilSuccess) {
  WebhooksHarness h;
  h.Register(kOrg);
  std::atomic<int> calls = 0;
  h.Respond([&](const DeliveryRequest&) { return Status(++calls <= 3 ? 500 : 200); });
  h.Event(kOrg, "evt-1");
  h.Tick(1);
  std::vector<int64_t> waits;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    json d = h.DeliveryOf(kOrg, "evt-1");
    ASSERT_EQ(d["status"], "pending") << d.dump();
    EXPECT_EQ(d["errorClass"], "http_5xx");
    auto next = h.Queries(kOrg).GetDelivery(kOrg, d["id"]);
    const int64_t wait = (*next)["scheduledAtMs"].get<int64_t>() - h.now();
    waits.push_back(wait);
    EXPECT_EQ(h.Tick(0, wait - 150), 0u) << "not before its time";
    h.Tick(1, 150);
  }
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1")["status"], "succeeded");
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1")["attempts"].size(), 4u);
  // 1 s, 2 s, 4 s less up to 20% jitter.
  for (size_t i = 0; i < waits.size(); ++i) {
    EXPECT_LE(waits[i], 1000LL << i);
    EXPECT_GE(waits[i], (1000LL << i) * 8 / 10);
  }
}

TEST(WebhooksAttemptTest, RetryAfterOn429IsHonoured) {
  WebhooksHarness h;
  h.Register(kOrg);
  h.Respond([](const DeliveryRequest&) {
    auto r = Status(429);
    r.retry_after_ms = 120'000;
    return r;
  });
  h.Event(kOrg, "evt-1");
  h.Tick(1);
  json d = h.DeliveryOf(kOrg, "evt-1");
  EXPECT_EQ(d["errorClass"], "rate_limited");
  EXPECT_GE(d["scheduledAtMs"].get<int64_t>() - h.now(), 120'000);
}

TEST(WebhooksAttemptTest, GoneDisablesTheEndpointAndStopsDeliveries) {
  WebhooksHarness h;
  json w = h.Register(kOrg);
  h.Respond([](const DeliveryRequest&) { return Status(410); });
  h.Event(kOrg, "evt-1");
  h.Tick(1);
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1")["status"], "failed");
  json got = h.Webhook(kOrg, w["id"]);
  EXPECT_EQ(got["active"], false);
  EXPECT_TRUE(got.value("disabledReason", "").find("410") != std::string::npos);
  h.Event(kOrg, "evt-2");
  h.Tick(0);
  EXPECT_EQ(h.Requests().size(), 1u);
  EXPECT_FALSE(h.Queries(kOrg).GetEventDeliveryStatus(kOrg, "evt-2").ok());
}

TEST(WebhooksAttemptTest, GivesUpAfterTheMaximumAttempts) {
  WebhooksOptions o;
  o.retry.max_attempts = 3;
  WebhooksHarness h(o);
  h.Register(kOrg);
  h.Respond([](const DeliveryRequest&) {
    DeliveryResponse r;
    r.failure = TransportFailure::kConnection;
    r.error = "connection refused";
    return r;
  });
  h.Event(kOrg, "evt-1");
  h.Tick(1);
  h.Tick(1, 1000);
  h.Tick(1, 2000);
  json d = h.DeliveryOf(kOrg, "evt-1");
  EXPECT_EQ(d["status"], "failed");
  EXPECT_EQ(d["attemptNumber"], 3);
  EXPECT_TRUE(d["errorMessage"].get<std::string>().find("given up after 3") != std::string::npos);
  h.Tick(0, 3'600'000);
  EXPECT_EQ(h.Requests().size(), 3u);
}

TEST(WebhooksAttemptTest, GivesUpOnceTheDeliveryIsOlderThanTheMaximumAge) {
  WebhooksOptions o;
  o.retry.max_age_ms = 5000;
  WebhooksHarness h(o);
  h.Register(kOrg);
  h.Respond([](const DeliveryRequest&) { return Status(503); });
  h.Event(kOrg, "evt-1");
  h.Tick(1);
  h.Tick(1, 1000);
  h.Tick(1, 2000);  // the next retry would be 4 s later, past the 5 s age
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1")["status"], "failed");
}

TEST(WebhooksAttemptTest, ALostOutcomeIsRetriedWhenItsLeaseEnds) {
  WebhooksHarness h;
  h.Register(kOrg);
  h.Event(kOrg, "evt-1");
  h.driver().AdvanceWallClock(h.options().queue_interval_ms);
  h.DropOutcomes(1);  // the instance that sent it died before its outcome was appended
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1")["status"], "in_progress");
  const int64_t lease = h.options().timeout_ms + h.options().outcome_grace_ms;
  EXPECT_EQ(h.Tick(0, lease - 2 * h.options().queue_interval_ms), 0u) << "not before the lease";
  h.Tick(0, 2 * h.options().queue_interval_ms);
  json d = h.DeliveryOf(kOrg, "evt-1");
  EXPECT_EQ(d["status"], "pending");
  EXPECT_EQ(d["errorClass"], "connection");
  h.Tick(1, 1000);
  d = h.DeliveryOf(kOrg, "evt-1");
  EXPECT_EQ(d["status"], "succeeded");
  EXPECT_EQ(d["attemptNumber"], 2);
  auto requests = h.Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(Headers(requests[0])["webhook-id"], Headers(requests[1])["webhook-id"])
      << "a re-sent delivery keeps its id, so receivers deduplicate it";
}

// processQueue records a tick's attempts as sent when it stages them and hands them to the
// sender together. One the sender refuses at the hand-over (here: the delivery's last outcome
// is still being appended) has its delivery put back as it was, and goes on a later tick.
TEST(WebhooksAttemptTest, AnAttemptTheSenderRefusesLeavesItsDeliveryAsItWas) {
  WebhooksHarness h;
  h.Register(kOrg);
  h.HoldAcknowledgements();
  h.Event(kOrg, "evt-1");
  h.driver().AdvanceWallClock(h.options().queue_interval_ms);
  h.DropOutcomes(1);  // appended, but not yet acknowledged: the sender still holds it
  const int64_t lease = h.options().timeout_ms + h.options().outcome_grace_ms;
  h.Tick(0, lease);  // taken for lost: a retry is due within a second
  const json before = h.DeliveryOf(kOrg, "evt-1");
  ASSERT_EQ(before["status"], "pending");
  ASSERT_EQ(before["attemptNumber"], 1);
  h.Tick(0, 1000);
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1"), before) << "refused by the sender: nothing recorded";
  EXPECT_EQ(h.Requests().size(), 1u);
  EXPECT_EQ(h.options().counters->deferred_sender.load(), 1u);
  h.AcknowledgeHeld();
  h.Tick(1);
  const json d = h.DeliveryOf(kOrg, "evt-1");
  EXPECT_EQ(d["status"], "succeeded");
  EXPECT_EQ(d["attemptNumber"], 2);
  EXPECT_EQ(h.Requests().size(), 2u);
}

// A tick that fails halfway keeps its writes, the attempts it recorded as sent among them: those
// still go to the sender, rather than waiting out their leases as lost attempts.
TEST(WebhooksAttemptTest, AttemptsStagedBeforeATickFailsAreStillSent) {
  WebhooksHarness h;
  h.Register(kOrg);
  h.Event(kOrg, "evt-1");
  h.driver().AdvanceWallClock(1);  // evt-2's delivery is due after evt-1's
  h.Event(kOrg, "evt-2");
  // evt-2's delivery record is damaged: reading its status throws.
  const std::string broken =
      h.Queries(kOrg).GetEventDeliveryStatus(kOrg, "evt-2")->at("deliveries")[0].value("id", "");
  h.driver()
      .TaskFor(kCommands, kOrg)
      .state()
      .key_value_store(kDeliveriesStore)
      ->Put(keys::Delivery(kOrg, broken),
            json({{"id", broken}, {"status", 7}, {"webhookId", "w"}}).dump());
  h.Tick(1);
  EXPECT_EQ(h.Requests().size(), 1u);
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1")["status"], "succeeded");
}

TEST(WebhooksAttemptTest, AnOutcomeNotReadYetIsNotTakenForALostOne) {
  WebhooksHarness h;
  h.Register(kOrg);
  h.Event(kOrg, "evt-1");
  // The task lags its attempts partition: the outcome is appended but not read before the
  // attempt's lease ends.
  h.driver().HoldInput(testing::kAttempts);
  h.Tick(1);
  const int64_t lease = h.options().timeout_ms + h.options().outcome_grace_ms;
  h.Tick(0, lease + h.options().queue_interval_ms);
  h.Tick(0, 1000);
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1")["status"], "in_progress") << "waits for the outcome";
  EXPECT_EQ(h.options().counters->leases_expired.load(), 0u);
  EXPECT_EQ(h.Requests().size(), 1u) << "not sent again while the outcome may be on its way";
  h.driver().ReleaseInput(testing::kAttempts);
  json d = h.DeliveryOf(kOrg, "evt-1");
  EXPECT_EQ(d["status"], "succeeded");
  EXPECT_EQ(d["attemptNumber"], 1);
  h.Tick(0, 1000);
  EXPECT_EQ(h.Requests().size(), 1u);
}

// Holds every request until opened, so attempts stay in flight (as to a slow endpoint).
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  void Open() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }
  void Pass() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return open; });
  }
};

// Opens the gate when it goes out of scope, before the harness stops its sender.
struct GateOpener {
  std::shared_ptr<Gate> gate;
  ~GateOpener() { gate->Open(); }
};

// The timer store's changes buffered since the last commit: what the next commit appends to
// its changelog.
size_t PendingTimerChanges(WebhooksHarness& h) {
  size_t n = 0;
  h.driver()
      .TaskFor(kCommands, kOrg)
      .state()
      .VisitPendingChanges([&](const std::string& store, const state::PendingChange&) {
        if (store == kDeliveryTimersStore) ++n;
      });
  return n;
}

// An endpoint that takes one attempt at a time and holds every request until the gate opens;
// `events` events due a millisecond apart, and one processQueue tick: the first attempt is in
// flight, the others wait for the endpoint.
struct BusyEndpoint {
  explicit BusyEndpoint(int events) : h({}, 3, WebhookSenderOptions{4, 1, 256}) {
    h.Respond([gate = gate](const DeliveryRequest&) {
      gate->Pass();
      return Status(200);
    });
    h.Register(kOrg);
    for (int i = 0; i < events; ++i) {
      h.Event(kOrg, "evt-" + std::to_string(i));
      h.driver().AdvanceWallClock(1);
    }
    h.Tick();
    in_flight =
        cm::testing::WaitFor([&] { return h.Requests().size() == 1; }, std::chrono::seconds(10));
  }
  WebhooksHarness h;
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  GateOpener opener{gate};  // destroyed first: opens the gate before the sender stops
  bool in_flight = false;
};

TEST(WebhooksQueueTest, DeliveriesWaitingForABusyEndpointWriteNothingAndGoInOrder) {
  BusyEndpoint busy(10);
  WebhooksHarness& h = busy.h;
  ASSERT_TRUE(busy.in_flight);
  EXPECT_EQ(h.options().counters->parked.load(), 9);
  h.driver().Commit();
  for (int i = 0; i < 100; ++i) h.Tick();
  EXPECT_EQ(PendingTimerChanges(h), 0u)
      << "a delivery waiting for its endpoint is not rescheduled on every tick";
  EXPECT_EQ(h.Requests().size(), 1u) << "never more than the endpoint's limit in flight";

  busy.gate->Open();
  h.Pump(10);
  const auto requests = h.Requests();
  ASSERT_EQ(requests.size(), 10u);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(json::parse(requests[i].body)["eventId"], "evt-" + std::to_string(i))
        << "waiting deliveries go in the order they became due";
  }
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(h.DeliveryOf(kOrg, "evt-" + std::to_string(i))["status"], "succeeded");
  EXPECT_EQ(h.options().counters->parked.load(), 0);
}

TEST(WebhooksQueueTest, DeliveriesWaitingForABusyEndpointGoOutAfterARestart) {
  BusyEndpoint busy(4);
  WebhooksHarness& h = busy.h;
  ASSERT_TRUE(busy.in_flight);
  h.driver().Commit();
  ASSERT_TRUE(h.driver().Restart().ok());  // what waited in memory is gone
  busy.gate->Open();
  h.FeedOutcomes(1);
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-0")["status"], "succeeded");
  // The waiting ones come back with their stored timers, a lease later.
  const int64_t lease = h.options().timeout_ms + h.options().outcome_grace_ms;
  h.driver().AdvanceWallClock(lease);
  h.Pump(3);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(h.DeliveryOf(kOrg, "evt-" + std::to_string(i))["status"], "succeeded");
  EXPECT_EQ(h.Requests().size(), 4u) << "each sent once";
}

TEST(WebhooksAttemptTest, StaleAndRepeatedOutcomesChangeNothing) {
  WebhooksHarness h;
  h.Register(kOrg);
  h.Event(kOrg, "evt-1");
  h.Tick(1);
  json d = h.DeliveryOf(kOrg, "evt-1");
  ASSERT_EQ(d["status"], "succeeded");
  AttemptOutcome late;
  late.organization = kOrg;
  late.webhook_id = d["webhookId"];
  late.delivery_id = d["id"];
  late.attempt = 1;
  late.response.status = 500;
  h.driver().PipeInput(kAttempts, kOrg, late.ToJson(), h.now());
  late.attempt = 7;
  h.driver().PipeInput(kAttempts, kOrg, late.ToJson(), h.now());
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1")["status"], "succeeded");
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1")["attempts"].size(), 1u);
}

TEST(WebhooksCircuitFlowTest, OpensAfterFailuresThenDeliveriesWaitInsteadOfFailing) {
  WebhooksOptions o;
  o.circuit = CircuitPolicy{3, 60'000, 2};
  WebhooksHarness h(o);
  json w = h.Register(kOrg);
  std::atomic<bool> down = true;
  h.Respond([&](const DeliveryRequest&) { return Status(down ? 503 : 200); });
  for (int i = 0; i < 3; ++i) h.Event(kOrg, "evt-" + std::to_string(i));
  h.Tick(3);
  auto circuit = h.Queries(kOrg).GetCircuitState(kOrg, w["id"]);
  ASSERT_TRUE(circuit.ok());
  EXPECT_EQ((*circuit)["state"], "open");
  EXPECT_EQ((*circuit)["failureCount"], 3);
  // Retries fall due during the cool-down: they wait, neither sent nor failed.
  h.Event(kOrg, "evt-new");
  h.Tick(0, 10'000);
  EXPECT_EQ(h.Requests().size(), 3u);
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-new")["status"], "pending");
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-new")["attemptNumber"], 0);
  // After the cool-down one probe goes; it succeeds, a second closes the circuit.
  down = false;
  h.Tick(1, 50'100);
  EXPECT_EQ(h.Requests().size(), 4u) << "one probe at a time while half-open";
  EXPECT_EQ(h.Circuit(kOrg, w["id"])["state"], "half_open");
  h.Tick(1, 1000);
  EXPECT_EQ(h.Circuit(kOrg, w["id"])["state"], "closed");
  h.Tick(2, 1000);
  for (const char* e : {"evt-0", "evt-1", "evt-2", "evt-new"})
    EXPECT_EQ(h.DeliveryOf(kOrg, e)["status"], "succeeded") << e;
}

// An endpoint whose circuit opened at its first failure ("evt-0") and closes after
// `successes` successful probes; it answers 500 while `down`, then as `back` says.
struct OpenCircuit {
  explicit OpenCircuit(
      int successes, std::function<DeliveryResponse()> back = [] { return Status(200); })
      : h(Options(successes)) {
    w = h.Register(kOrg);
    h.Respond([this, back = std::move(back)](const DeliveryRequest&) {
      return down ? Status(500) : back();
    });
    h.Event(kOrg, "evt-0");
    h.Tick(1);
    opened = h.Circuit(kOrg, w["id"])["state"] == "open";
  }
  static WebhooksOptions Options(int successes) {
    WebhooksOptions o;
    o.circuit = CircuitPolicy{1, 60'000, successes};
    return o;
  }
  json Circuit() { return h.Circuit(kOrg, w["id"]); }
  void ExpectAllSucceeded(int events) {
    for (int i = 0; i < events; ++i)
      EXPECT_EQ(h.DeliveryOf(kOrg, "evt-" + std::to_string(i))["status"], "succeeded") << i;
  }

  std::atomic<bool> down = true;  // declared first: the sender reads it until the harness stops
  WebhooksHarness h;
  json w;
  bool opened = false;
};

// The endpoint of `c` comes back but slow (its responder waits on a gate): after the
// cool-down its first probe hangs while five more deliveries (evt-1..5) are held behind it.
void HoldFiveBehindAHangingProbe(OpenCircuit& c) {
  WebhooksHarness& h = c.h;
  ASSERT_TRUE(c.opened);
  for (int i = 1; i <= 5; ++i) h.Event(kOrg, "evt-" + std::to_string(i));
  c.down = false;
  h.Tick(0, 60'100);
  ASSERT_TRUE(
      cm::testing::WaitFor([&] { return h.Requests().size() == 2; }, std::chrono::seconds(10)));
  ASSERT_EQ(c.Circuit()["state"], "half_open");
  ASSERT_EQ(h.options().counters->held.load(), 5);
}

TEST(WebhooksCircuitFlowTest, AFailedProbeReopensAndResetCircuitLetsDeliveriesGoAtOnce) {
  OpenCircuit c(1);
  WebhooksHarness& h = c.h;
  ASSERT_TRUE(c.opened);
  h.Tick(1, 60'100);  // the probe fails
  EXPECT_EQ(c.Circuit()["state"], "open");
  EXPECT_EQ(c.Circuit()["failureCount"], 2);
  c.down = false;
  json r = h.Send(kOrg, kResetCircuit, {{"webhookId", c.w["id"]}});
  ASSERT_EQ(r.value("status", 0), 200) << r.dump();
  EXPECT_EQ(r["body"]["reset"], true);
  EXPECT_EQ(c.Circuit()["state"], "closed");
  h.Tick(1);
  c.ExpectAllSucceeded(1);
}

TEST(WebhooksCircuitFlowTest, DeliveriesMadeWhileItIsOpenAreFirstDueWhenTheCoolDownEnds) {
  OpenCircuit c(1);
  WebhooksHarness& h = c.h;
  ASSERT_TRUE(c.opened);
  h.Tick(0, 2000);  // evt-0's retry falls due and waits for the cool-down
  for (int i = 1; i <= 5; ++i) h.Event(kOrg, "evt-" + std::to_string(i));
  h.driver().Commit();
  const uint64_t deferred = h.options().counters->deferred_circuit.load();
  for (int i = 0; i < 50; ++i) h.Tick(0, 1000);
  EXPECT_EQ(PendingTimerChanges(h), 0u)
      << "a delivery made behind an open circuit is not looked at before the cool-down ends";
  EXPECT_EQ(h.options().counters->deferred_circuit.load(), deferred);
  EXPECT_EQ(h.Requests().size(), 1u);
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-3")["status"], "pending");

  c.down = false;
  h.Tick(1, 10'100);  // past the cool-down: one probe, whose success closes the circuit
  EXPECT_EQ(c.Circuit()["state"], "closed");
  h.Pump(5);
  c.ExpectAllSucceeded(6);
  EXPECT_EQ(h.Requests().size(), 7u) << "the failure, then each delivery once";
}

TEST(WebhooksCircuitFlowTest, DeliveriesBehindAHalfOpenProbeWaitForItsOutcomeNotForATimer) {
  auto gate = std::make_shared<Gate>();
  OpenCircuit c(2, [gate] {
    gate->Pass();  // the endpoint is back, but slow: the probe hangs until the gate opens
    return Status(200);
  });
  GateOpener opener{gate};  // destroyed before the harness stops its sender
  WebhooksHarness& h = c.h;
  ASSERT_NO_FATAL_FAILURE(HoldFiveBehindAHangingProbe(c));
  h.driver().Commit();
  for (int i = 0; i < 100; ++i) h.Tick(0, 100);  // ten seconds of a probe in flight
  EXPECT_EQ(PendingTimerChanges(h), 0u)
      << "deliveries behind the probe are not read and rescheduled while it is in flight";
  EXPECT_EQ(h.Requests().size(), 2u) << "one probe at a time";

  // The probe succeeds: the next one goes at once, and its success closes the circuit.
  const int64_t back = h.now();
  gate->Open();
  h.FeedOutcomes(1);
  EXPECT_EQ(h.options().counters->held.load(), 4) << "one taken as the next probe";
  h.Tick(1);
  EXPECT_EQ(c.Circuit()["state"], "closed");
  EXPECT_EQ(h.options().counters->held.load(), 0);
  h.Pump(4);
  c.ExpectAllSucceeded(6);
  EXPECT_LT(h.now() - back, 1000) << "none waited for its timer";
  EXPECT_EQ(h.Requests().size(), 7u);
}

// A circuit that needs three successful probes: after each success only the next probe is
// taken from the held deliveries, the others stay held (none is read, refused by the circuit
// and held again), and the circuit's closing sends them all.
TEST(WebhooksCircuitFlowTest, EachSuccessfulProbeWakesOnlyTheNextProbe) {
  auto gate = std::make_shared<Gate>();
  OpenCircuit c(3, [gate] {
    gate->Pass();  // the first probe hangs until the gate opens, so the others are held
    return Status(200);
  });
  GateOpener opener{gate};  // destroyed before the harness stops its sender
  WebhooksHarness& h = c.h;
  ASSERT_NO_FATAL_FAILURE(HoldFiveBehindAHangingProbe(c));
  const uint64_t refused = h.options().counters->deferred_circuit.load();

  gate->Open();
  h.FeedOutcomes(1);  // the first probe's success: one more is taken as the next probe
  EXPECT_EQ(h.options().counters->held.load(), 4);
  h.Tick(1);  // the second probe goes and succeeds
  EXPECT_EQ(c.Circuit()["state"], "half_open");
  EXPECT_EQ(c.Circuit()["successCount"], 2);
  EXPECT_EQ(h.options().counters->held.load(), 3);
  h.Tick(1);  // the third closes the circuit and wakes the rest
  EXPECT_EQ(c.Circuit()["state"], "closed");
  EXPECT_EQ(h.options().counters->held.load(), 0);
  h.Pump(3);
  c.ExpectAllSucceeded(6);
  EXPECT_EQ(h.options().counters->deferred_circuit.load(), refused)
      << "no held delivery was read and refused by the half-open circuit again";
  EXPECT_EQ(h.Requests().size(), 7u);
}

// The delivery taken as the next probe may not become it: here it passed its maximum age while
// it was held, so its dispatch gives it up. The one after it is taken at once, and so on,
// instead of all of them waiting for their timers (a lease, 30 s by default).
TEST(WebhooksCircuitFlowTest, ANextProbeThatCannotGoHandsOverToTheOneAfterIt) {
  auto gate = std::make_shared<Gate>();
  std::atomic<bool> down = true;  // declared before the harness: its sender reads them
  WebhooksOptions o;
  o.circuit = CircuitPolicy{1, 60'000, 3};
  o.retry.max_age_ms = 65'000;
  WebhooksHarness h(o);
  GateOpener opener{gate};  // destroyed before the harness stops its sender
  h.Register(kOrg);
  h.Respond([&down, gate](const DeliveryRequest&) {
    if (down) return Status(500);
    gate->Pass();  // the first probe hangs until the gate opens, so the others are held
    return Status(200);
  });
  const std::vector<std::string> old = {"old-0", "old-1", "old-2", "old-3"};
  for (const auto& e : old) h.Event(kOrg, e);
  h.Tick(4);  // each fails; the first failure opened the circuit
  h.Tick(0, 40'000);
  h.Event(kOrg, "young");
  down = false;
  h.Tick(0, 20'100);  // past the cool-down: one probe goes, the other four are held
  ASSERT_TRUE(
      cm::testing::WaitFor([&] { return h.Requests().size() == 5; }, std::chrono::seconds(10)));
  ASSERT_EQ(h.options().counters->held.load(), 4);
  h.driver().AdvanceWallClock(6'000);  // the old ones pass their maximum age, "young" does not
  gate->Open();
  h.FeedOutcomes(1);  // the probe succeeds (one of three)
  const bool young_was_the_probe = h.DeliveryOf(kOrg, "young")["status"] == "succeeded";
  h.Tick(0);  // the held ones are taken one after another until one can go
  if (!young_was_the_probe) {
    ASSERT_EQ(h.Pump(1), 1u) << "young went as the next probe";
  }
  h.Tick(0);
  h.Tick(0);
  EXPECT_EQ(h.options().counters->held.load(), 0);
  EXPECT_EQ(h.DeliveryOf(kOrg, "young")["status"], "succeeded");
  int given_up = 0;
  for (const auto& e : old) {
    const json d = h.DeliveryOf(kOrg, e);
    if (d["status"] == "failed") ++given_up;
  }
  EXPECT_EQ(given_up, young_was_the_probe ? 4 : 3)
      << "every old delivery but the first probe is given up at once, none waits for its timer";
  EXPECT_EQ(h.Requests().size(), young_was_the_probe ? 5u : 6u);
}

TEST(WebhooksEndpointTest, RotatedSecretSignsBesideTheOldOneForTheOverlap) {
  WebhooksHarness h;
  json w = h.Register(kOrg);
  const std::string old_secret = w["secret"];
  const std::string new_secret = NewWebhookSecret();
  json r = h.Send(kOrg, kUpdate, {{"webhookId", w["id"]}, {"newSecret", new_secret}});
  ASSERT_EQ(r.value("status", 0), 200) << r.dump();
  EXPECT_EQ(r["body"]["secret"], new_secret);
  h.Event(kOrg, "evt-1");
  h.Tick(1);
  auto verify = [&](const DeliveryRequest& req, const std::string& secret) {
    auto hd = Headers(req);
    return VerifyWebhook(secret, hd["webhook-id"], hd["webhook-timestamp"], hd["webhook-signature"],
                         req.body, std::stoll(hd["webhook-timestamp"]))
        .ok();
  };
  auto first = h.Requests().back();
  EXPECT_TRUE(verify(first, old_secret));
  EXPECT_TRUE(verify(first, new_secret));
  h.driver().AdvanceWallClock(24LL * 3600 * 1000);
  h.Event(kOrg, "evt-2");
  h.Tick(1);
  auto later = h.Requests().back();
  EXPECT_TRUE(verify(later, new_secret));
  EXPECT_FALSE(verify(later, old_secret)) << "the old secret stops signing after 24 h";
}

TEST(WebhooksEndpointTest, DeleteCancelsPendingDeliveriesAndSaysHowMany) {
  WebhooksHarness h;
  json w = h.Register(kOrg);
  h.Respond([](const DeliveryRequest&) { return Status(500); });
  h.Event(kOrg, "evt-1");
  h.Tick(1);               // evt-1 waits for a retry
  h.Event(kOrg, "evt-2");  // evt-2 waits for its first attempt
  json r = h.Send(kOrg, kDelete, {{"webhookId", w["id"]}});
  ASSERT_EQ(r.value("status", 0), 200) << r.dump();
  EXPECT_EQ(r["body"]["deleted"], true);
  EXPECT_EQ(r["body"]["cancelledDeliveries"], 2);
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1")["status"], "cancelled");
  h.Tick(0, 10'000);
  EXPECT_EQ(h.Requests().size(), 1u);
  EXPECT_FALSE(h.Queries(kOrg).GetWebhook(kOrg, w["id"]).ok());
  EXPECT_EQ(h.Send(kOrg, kDelete, {{"webhookId", w["id"]}}).value("status", 0), 404);
}

TEST(WebhooksManualTest, SendTestEventReachesAnEndpointWhateverItSubscribedTo) {
  WebhooksHarness h;
  json w = h.Register(kOrg, json::array({"member.added"}));
  json r = h.Send(kOrg, kSendTest, {{"webhookId", w["id"]}, {"eventId", "evt_test_1"}});
  ASSERT_EQ(r.value("status", 0), 202) << r.dump();
  h.Tick(1);
  auto requests = h.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(json::parse(requests[0].body)["type"], "webhook.test");
  EXPECT_EQ(h.Delivery(kOrg, r["body"]["deliveryId"])["status"], "succeeded");
}

TEST(WebhooksManualTest, RetryDeliveryRestartsAFailedDeliveryAndRefusesAPendingOne) {
  WebhooksOptions o;
  o.retry.max_attempts = 1;
  WebhooksHarness h(o);
  h.Register(kOrg);
  std::atomic<bool> down = true;
  h.Respond([&](const DeliveryRequest&) { return Status(down ? 500 : 200); });
  h.Event(kOrg, "evt-1");
  h.Tick(1);
  json d = h.DeliveryOf(kOrg, "evt-1");
  ASSERT_EQ(d["status"], "failed");
  down = false;
  json r = h.Send(kOrg, kRetryDelivery, {{"deliveryId", d["id"]}});
  ASSERT_EQ(r.value("status", 0), 202) << r.dump();
  EXPECT_EQ(h.Send(kOrg, kRetryDelivery, {{"deliveryId", d["id"]}}).value("status", 0), 409);
  h.Tick(1);
  d = h.DeliveryOf(kOrg, "evt-1");
  EXPECT_EQ(d["status"], "succeeded");
  EXPECT_EQ(d["attemptNumber"], 2);
  EXPECT_EQ(h.Send(kOrg, kRetryDelivery, {{"deliveryId", std::string(kOrg) + "~d00000000000000ff"}})
                .value("status", 0),
            404);
}

TEST(WebhooksQueriesTest, HealthMetricsGiveRateLatencyAndTheErrorBreakdown) {
  WebhooksHarness h;
  json w = h.Register(kOrg);
  std::atomic<int> n = 0;
  h.Respond([&](const DeliveryRequest&) {
    const int k = ++n;
    if (k % 4 == 0) {
      DeliveryResponse r;
      r.failure = TransportFailure::kTimeout;
      r.response_time_ms = 30'000;
      return r;
    }
    return Status(200, k);
  });
  for (int i = 0; i < 20; ++i) h.Event(kOrg, "evt-" + std::to_string(i));
  h.Pump(20);
  // (Attempts are timed by the sender's clock, not the driver's: the range spans both.)
  auto m = h.Queries(kOrg).GetHealthMetrics(kOrg, w["id"], 1'000'000'000'000, h.now() + 1);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)["deliveriesInPeriod"], 20);
  EXPECT_DOUBLE_EQ((*m)["successRate"].get<double>(), 75.0);
  EXPECT_GE((*m)["p99LatencyMs"].get<double>(), 27'000.0);
  EXPECT_LE((*m)["p95LatencyMs"].get<double>(), 30'000.0);
  ASSERT_EQ((*m)["errorBreakdown"].size(), 1u);
  EXPECT_EQ((*m)["errorBreakdown"][0]["errorClass"], "timeout");
  EXPECT_EQ((*m)["errorBreakdown"][0]["count"], 5);
  auto empty = h.Queries(kOrg).GetHealthMetrics(kOrg, w["id"], 0, 1000);
  EXPECT_EQ((*empty)["deliveriesInPeriod"], 0);
}

TEST(WebhooksQueriesTest, DeliveryHistoryIsNewestFirstFilteredAndPaginated) {
  WebhooksHarness h;
  json w = h.Register(kOrg);
  h.Respond([](const DeliveryRequest& r) {
    return Status(json::parse(r.body)["eventId"].get<std::string>().ends_with("3") ? 500 : 200);
  });
  for (int i = 0; i < 5; ++i) {
    h.Event(kOrg, "evt-" + std::to_string(i));
    h.driver().AdvanceWallClock(1000);
  }
  h.Tick(5);
  auto all = h.Queries(kOrg).GetDeliveryHistory(kOrg, w["id"], 2, "", "");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ((*all)["total"], 5);
  EXPECT_EQ((*all)["hasMore"], true);
  EXPECT_EQ((*all)["deliveries"][0]["eventId"], "evt-4");
  auto next = h.Queries(kOrg).GetDeliveryHistory(kOrg, w["id"], 2, (*all)["nextCursor"], "");
  EXPECT_EQ((*next)["deliveries"][0]["eventId"], "evt-2");
  auto pending = h.Queries(kOrg).GetDeliveryHistory(kOrg, w["id"], 10, "", "pending");
  EXPECT_EQ((*pending)["total"], 1);
  EXPECT_EQ((*pending)["deliveries"][0]["eventId"], "evt-3");
  EXPECT_FALSE(h.Queries(kOrg).GetDeliveryHistory(kOrg, "org-a~w0000000000000999", 2, "", "").ok());
}

TEST(WebhooksStateTest, DeliveriesAndTimersSurviveARestart) {
  WebhooksHarness h;
  h.Register(kOrg);
  h.Respond([](const DeliveryRequest&) { return Status(500); });
  h.Event(kOrg, "evt-1");
  h.Tick(1);
  h.driver().Commit();
  ASSERT_TRUE(h.driver().Restart().ok());
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1")["status"], "pending");
  h.Respond([](const DeliveryRequest&) { return Status(200); });
  h.Tick(1, 1000);
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1")["status"], "succeeded");
}

TEST(WebhooksStateTest, AReplayedOutcomeMarksTheAttemptMadeSoNothingIsSentAgain) {
  WebhooksHarness h;
  h.Register(kOrg);
  h.Event(kOrg, "evt-1");
  json d = h.DeliveryOf(kOrg, "evt-1");
  ASSERT_EQ(d["status"], "pending");
  // After a reset the outcome of the attempt made before it comes back before any punctuation.
  AttemptOutcome before;
  before.organization = kOrg;
  before.webhook_id = d["webhookId"];
  before.delivery_id = d["id"];
  before.attempt = 1;
  before.response.status = 200;
  h.driver().PipeInput(kAttempts, kOrg, before.ToJson(), h.now(), {{"cm-replayed", "1"}});
  EXPECT_EQ(h.DeliveryOf(kOrg, "evt-1")["status"], "succeeded");
  h.Tick(0, 10'000);
  EXPECT_TRUE(h.Requests().empty());
}

TEST(WebhooksCommandTest, EnqueueEventAnswersQueuedAndTheWebhooks) {
  WebhooksHarness h;
  json a = h.Register(kOrg, json::array({"document.*"}));
  h.Register(kOrg, json::array({"team.*"}));
  json r = h.Send(
      kOrg, kEnqueueEvent,
      {{"event",
        {{"eventId", "e-1"}, {"eventType", "document.shared"}, {"data", {{"documentId", "d1"}}}}}});
  ASSERT_EQ(r.value("status", 0), 202) << r.dump();
  EXPECT_EQ(r["body"]["queued"], 1);
  EXPECT_EQ(r["body"]["webhookIds"], json::array({a["id"]}));
  EXPECT_EQ(h.Send(kOrg, kEnqueueEvent, {{"event", {{"eventType", "x"}}}}).value("status", 0), 400);
  h.Tick(1);
  EXPECT_EQ(json::parse(h.Requests()[0].body)["data"]["documentId"], "d1");
}

}  // namespace
}  // namespace cm::webhooks::testing
