// Authentication and tenant isolation over HTTP (issue 13), on the usage application wired as
// `cmstream run --topology cloudmatrix` wires it: API keys in the api-keys global store, every
// route behind the authenticator, idempotency keys scoped per principal, organization and route.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <latch>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "processors/auth/api_key.h"
#include "topology/common/crypto.h"
#include "topology/common/wall_clock.h"
#include "usage_instance.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cm-it-auth-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    auto broker = testing::StartUsageBroker(2);
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
    a_ = Start("a");
  }

  std::unique_ptr<testing::UsageInstance> Start(const std::string& id) {
    auto instance = std::make_unique<testing::UsageInstance>(
        *broker_,
        testing::UsageInstanceOptions{
            .application_id = "it-auth", .instance_id = id, .state_dir = (dir_ / id).string()});
    auto started = instance->Start();
    EXPECT_TRUE(started.ok()) << started.ToString();
    return instance;
  }

  void TearDown() override {
    b_.reset();
    a_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // A new key made through the admin route.
  std::string CreateKey(const std::string& org, const std::vector<std::string>& scopes,
                        testing::UsageInstance* on = nullptr) {
    json body = {{"organizationId", org}, {"scopes", scopes}, {"name", "test"}};
    auto r =
        (on ? on : a_.get())->client().Post("/v1/admin/api-keys", body.dump(), "application/json");
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
    if (!r || r->status != 201) return "";
    return json::parse(r->body).at("key").get<std::string>();
  }

  httplib::Result Send(const std::string& method, const std::string& path, const std::string& body,
                       const httplib::Headers& headers, int port = 0) {
    httplib::Client c("127.0.0.1", port ? port : a_->port());
    c.set_read_timeout(30, 0);
    if (method == "GET") return c.Get(path, headers);
    if (method == "POST") return c.Post(path, headers, body, "application/json");
    if (method == "PUT") return c.Put(path, headers, body, "application/json");
    if (method == "PATCH") return c.Patch(path, headers, body, "application/json");
    return c.Delete(path, headers, body, "application/json");
  }
  static httplib::Headers Bearer(const std::string& key) {
    return {{"Authorization", "Bearer " + key}};
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestBroker> broker_;
  std::unique_ptr<testing::UsageInstance> a_;
  std::unique_ptr<testing::UsageInstance> b_;
};

// A request that the route accepts from a key that may call it, per registered route. A route
// added without a sample here fails the walk, so no route escapes it.
struct Sample {
  std::string body;
  std::string query;
};
const std::map<std::string, Sample>& Samples() {
  static const std::map<std::string, Sample> kSamples = {
      {"POST /v1/usage/events",
       {R"({"eventId":"walk-1","organizationId":"org-a","eventType":"api.call"})", ""}},
      {"GET /v1/usage/orgs/{org}/metrics", {"", "?granularity=day&startTime=0&endTime=86400000"}},
      {"GET /v1/usage/orgs/{org}/quota", {"", ""}},
      {"GET /v1/usage/orgs/{org}/quota/check", {"", "?metricType=api_calls&amount=1"}},
      {"GET /v1/usage/orgs/{org}/report",
       {"", "?periodStart=2026-11-01T00:00:00Z&periodEnd=2026-12-01T00:00:00Z"}},
      {"GET /v1/usage/orgs/{org}/dashboard", {"", ""}},
      {"GET /v1/usage/orgs/{org}/alerts", {"", ""}},
      {"PUT /v1/usage/orgs/{org}/plan", {R"({"plan":"pro"})", ""}},
      {"POST /v1/usage/orgs/{org}/alerts",
       {R"({"metricType":"api_calls","threshold":80,"notificationChannels":["email"]})", ""}},
      {"POST /v1/usage/rollups",
       {R"({"metricType":"api_calls","cutoffTime":"2026-01-01T00:00:00Z","organizationId":"org-a"})",
        ""}},
      {"POST /v1/admin/api-keys", {R"({"organizationId":"org-a","scopes":["usage:read"]})", ""}},
      {"GET /v1/admin/api-keys", {"", ""}},
      {"DELETE /v1/admin/api-keys/{id}", {"", ""}},
      {"GET /v1/topology", {"", ""}},
      // Teams: {id}, {user}, {invitationId} and {token} come from TeamParams below.
      {"POST /v1/teams",
       {R"({"organizationId":"org-a","name":"walk-created","actorUserId":"walker"})", ""}},
      {"GET /v1/teams/{id}", {"", "?includeMembers=true&includeSubteams=true"}},
      {"PATCH /v1/teams/{id}", {R"({"description":"walked","actorUserId":"walker"})", ""}},
      {"DELETE /v1/teams/{id}", {R"({"actorUserId":"walker"})", ""}},
      {"POST /v1/teams/{id}/members", {R"({"userId":"joiner","actorUserId":"walker"})", ""}},
      {"PATCH /v1/teams/{id}/members/{user}", {R"({"role":"admin","actorUserId":"walker"})", ""}},
      {"DELETE /v1/teams/{id}/members/{user}", {R"({"actorUserId":"walker"})", ""}},
      {"POST /v1/teams/{id}/move", {R"({"newParentId":null,"actorUserId":"walker"})", ""}},
      {"GET /v1/teams/{id}/hierarchy", {"", "?direction=both"}},
      {"GET /v1/teams/{id}/permissions/{user}", {"", ""}},
      {"GET /v1/teams/{id}/permissions/{user}/check", {"", "?permission=team.read"}},
      {"POST /v1/teams/{id}/invitations",
       {R"({"email":"walk@example.com","actorUserId":"walker"})", ""}},
      {"DELETE /v1/teams/{id}/invitations/{invitationId}", {R"({"actorUserId":"walker"})", ""}},
      {"POST /v1/invitations/{token}/accept", {R"({"actorUserId":"acceptor"})", ""}},
      {"GET /v1/users/{user}/teams", {"", "?limit=10"}},
  };
  return kSamples;
}

TEST_F(AuthTest, EveryRouteRefusesStrangersOtherTenantsAndMissingScopesAndServesTheRightKey) {
  const std::string org_b_key =
      CreateKey("org-b", {"usage:read", "usage:write", "teams:read", "teams:write", "webhooks:read",
                          "webhooks:write"});
  // Per route scope, a key of org-a with every other scope but that one (and not admin).
  std::map<std::string, std::string> lacking;
  auto KeyLacking = [&](const std::string& scope) {
    auto it = lacking.find(scope);
    if (it != lacking.end()) return it->second;
    std::vector<std::string> others;
    for (const char* s : {"usage:read", "usage:write", "teams:read", "teams:write", "webhooks:read",
                          "webhooks:write"})
      if (s != scope) others.push_back(s);
    return lacking[scope] = CreateKey("org-a", others);
  };
  // A key the DELETE route can revoke.
  const std::string victim = CreateKey("org-a", {"usage:read"});
  const std::string victim_id = *auth::KeyIdOf(victim);
  ASSERT_FALSE(org_b_key.empty());
  // Data org-b must never see: a plan and an alert of org-a.
  ASSERT_EQ(
      Send("PUT", "/v1/usage/orgs/org-a/plan", R"({"plan":"pro"})", Bearer(testing::kTestAdminKey))
          ->status,
      200);

  // Teams of org-a for the team routes (made by the admin key acting as "walker"): one to
  // delete, one for everything else, with members to promote and remove and two invitations.
  auto admin = [&](const std::string& method, const std::string& path, const json& body) {
    auto r = Send(method, path, body.dump(), Bearer(testing::kTestAdminKey));
    EXPECT_TRUE(r && r->status >= 200 && r->status < 300) << path << (r ? r->body : "");
    return r ? json::parse(r->body, nullptr, false) : json();
  };
  const std::string team =
      admin("POST", "/v1/teams",
            {{"organizationId", "org-a"}, {"name", "walk"}, {"actorUserId", "walker"}})["id"];
  const std::string doomed = admin(
      "POST", "/v1/teams",
      {{"organizationId", "org-a"}, {"name", "walk-doomed"}, {"actorUserId", "walker"}})["id"];
  for (const char* user : {"promoted", "leaver"})
    admin("POST", "/v1/teams/" + team + "/members", {{"userId", user}, {"actorUserId", "walker"}});
  const json revocable = admin("POST", "/v1/teams/" + team + "/invitations",
                               {{"email", "r@example.com"}, {"actorUserId", "walker"}});
  const json acceptable = admin("POST", "/v1/teams/" + team + "/invitations",
                                {{"email", "a@example.com"}, {"actorUserId", "walker"}});
  const std::map<std::string, std::map<std::string, std::string>> team_params = {
      {"DELETE /v1/teams/{id}", {{"id", doomed}}},
      {"PATCH /v1/teams/{id}/members/{user}", {{"id", team}, {"user", "promoted"}}},
      {"DELETE /v1/teams/{id}/members/{user}", {{"id", team}, {"user", "leaver"}}},
      {"DELETE /v1/teams/{id}/invitations/{invitationId}",
       {{"id", team}, {"invitationId", revocable.value("id", "")}}},
      {"POST /v1/invitations/{token}/accept", {{"token", acceptable.value("token", "")}}},
  };
  auto TeamParams = [&](const std::string& name) {
    auto it = team_params.find(name);
    if (it != team_params.end()) return it->second;
    return std::map<std::string, std::string>{{"id", team}, {"user", "walker"}};
  };

  size_t walked = 0;
  for (const auto& route : a_->server().Routes()) {
    if (route.access.is_public) continue;
    const std::string name = route.method + " " + route.pattern;
    auto sample = Samples().find(name);
    ASSERT_NE(sample, Samples().end()) << name << " has no sample request in this test";
    std::string path = std::regex_replace(route.pattern, std::regex("\\{org\\}"), "org-a");
    if (route.pattern.rfind("/v1/teams", 0) == 0 ||
        route.pattern.rfind("/v1/invitations", 0) == 0 ||
        route.pattern.rfind("/v1/users", 0) == 0) {
      for (const auto& [param, value] : TeamParams(name))
        path = std::regex_replace(path, std::regex("\\{" + param + "\\}"), value);
    }
    path = std::regex_replace(path, std::regex("\\{id\\}"), victim_id) + sample->second.query;
    const std::string& body = sample->second.body;
    SCOPED_TRACE(name);
    ++walked;

    auto none = Send(route.method, path, body, {});
    ASSERT_TRUE(none);
    EXPECT_EQ(none->status, 401) << none->body;
    auto bad = Send(route.method, path, body,
                    Bearer("cmk_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    EXPECT_EQ(bad->status, 401);

    auto other = Send(route.method, path, body, Bearer(org_b_key));
    // A user is no organization's resource: another tenant's key is answered with what that
    // tenant may see of the user (nothing of org-a); every other route refuses it.
    const bool per_user = route.pattern.rfind("/v1/users/", 0) == 0;
    if (per_user) {
      EXPECT_EQ(other->status, 200) << other->body;
    } else {
      EXPECT_TRUE(other->status == 403 || other->status == 404) << other->status << other->body;
    }
    EXPECT_EQ(other->body.find("\"pro\""), std::string::npos) << other->body;
    EXPECT_EQ(other->body.find("org-a"), std::string::npos) << other->body;

    auto scopeless = Send(route.method, path, body, Bearer(KeyLacking(route.access.scope)));
    EXPECT_EQ(scopeless->status, 403) << scopeless->body;

    auto right = Send(route.method, path, body, Bearer(testing::kTestAdminKey));
    EXPECT_GE(right->status, 200) << right->body;
    EXPECT_LT(right->status, 300) << right->body;
  }
  EXPECT_GE(walked, Samples().size());
}

TEST_F(AuthTest, UnknownAndWrongKeysGetTheSameAnswer) {
  const std::string key = CreateKey("org-a", {"usage:read"});
  std::string wrong = key;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  auto unknown = Send("GET", "/v1/usage/orgs/org-a/quota", "",
                      Bearer("cmk_fedcba9876543210_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
  auto bad = Send("GET", "/v1/usage/orgs/org-a/quota", "", Bearer(wrong));
  auto good = Send("GET", "/v1/usage/orgs/org-a/quota", "", Bearer(key));
  EXPECT_EQ(unknown->status, 401);
  EXPECT_EQ(bad->status, 401);
  EXPECT_EQ(unknown->body, bad->body);
  EXPECT_EQ(good->status, 200) << good->body;
}

TEST_F(AuthTest, IdempotencyKeysAreScopedToTenantAndRouteAndBoundToTheBody) {
  const std::string t2 = CreateKey("tenant-2", {"usage:read", "usage:write"});
  const std::string t4 = CreateKey("tenant-4", {"usage:read", "usage:write"});
  const std::string alert =
      R"({"metricType":"api_calls","threshold":75,"notificationChannels":["email"]})";
  httplib::Headers h2 = Bearer(t2), h4 = Bearer(t4);
  h2.emplace("Idempotency-Key", "shared-key");
  h4.emplace("Idempotency-Key", "shared-key");

  auto first = Send("POST", "/v1/usage/orgs/tenant-2/alerts", alert, h2);
  ASSERT_EQ(first->status, 201) << first->body;
  // The same key from another tenant is that tenant's own new request.
  auto other = Send("POST", "/v1/usage/orgs/tenant-4/alerts", alert, h4);
  ASSERT_EQ(other->status, 201) << other->body;
  EXPECT_EQ(other->body.find("tenant-2"), std::string::npos) << other->body;
  auto listed = Send("GET", "/v1/usage/orgs/tenant-4/alerts", "", Bearer(t4));
  EXPECT_NE(listed->body.find("75"), std::string::npos) << listed->body;

  // A retry with the same body answers the first result; another body is refused.
  auto retry = Send("POST", "/v1/usage/orgs/tenant-2/alerts", alert, h2);
  EXPECT_EQ(retry->status, 201);
  EXPECT_EQ(retry->body, first->body);
  auto changed =
      Send("POST", "/v1/usage/orgs/tenant-2/alerts",
           R"({"metricType":"api_calls","threshold":90,"notificationChannels":["email"]})", h2);
  EXPECT_EQ(changed->status, 422) << changed->body;
  EXPECT_EQ(json::parse(changed->body)["error"]["code"], "idempotency_key_reused");
  // The same key on another route of the same tenant is a new request there.
  auto rollup = Send("POST", "/v1/usage/rollups",
                     R"({"metricType":"api_calls","cutoffTime":"2026-01-01T00:00:00Z"})", h2);
  EXPECT_EQ(rollup->status, 200) << rollup->body;
}

// seed 004: HMAC over method, path with query, timestamp and the body's SHA-256.
httplib::Headers Signed(const std::string& key, const std::string& method,
                        const std::string& target, const std::string& body, int64_t timestamp) {
  const std::string ts = std::to_string(timestamp);
  const std::string to_sign =
      method + "\n" + target + "\n" + ts + "\n" + topology::HexEncode(topology::Sha256(body));
  const std::string signature =
      topology::HexEncode(topology::HmacSha256(auth::TokenHash(key), to_sign));
  return {
      {"Authorization", "CM-HMAC-SHA256 keyId=" + *auth::KeyIdOf(key) + ",signature=" + signature},
      {"X-Cm-Timestamp", ts}};
}

TEST_F(AuthTest, SignedRequestsAreCheckedForSkewReplayAndTampering) {
  const std::string key = CreateKey("org-s", {"usage:read", "usage:write"});
  const int64_t now = topology::WallClockMs() / 1000;
  const std::string target = "/v1/usage/events";
  const std::string body = R"({"eventId":"s-1","organizationId":"org-s","eventType":"api.call"})";

  auto valid = Send("POST", target, body, Signed(key, "POST", target, body, now));
  EXPECT_EQ(valid->status, 202) << valid->body;
  auto replayed = Send("POST", target, body, Signed(key, "POST", target, body, now));
  EXPECT_EQ(replayed->status, 401) << replayed->body;
  auto stale = Send("POST", target, body, Signed(key, "POST", target, body, now - 301));
  EXPECT_EQ(stale->status, 401) << stale->body;
  std::string tampered = body;
  tampered.replace(tampered.find("s-1"), 3, "s-2");
  auto forged = Send("POST", target, tampered, Signed(key, "POST", target, body, now + 1));
  EXPECT_EQ(forged->status, 401) << forged->body;
  const std::string query = "/v1/usage/orgs/org-s/quota/check?metricType=api_calls&amount=1";
  auto get = Send("GET", query, "", Signed(key, "GET", query, "", now + 2));
  EXPECT_EQ(get->status, 200) << get->body;
}

TEST_F(AuthTest, ARevokedKeyStopsWorkingOnAnotherInstanceWithinASecond) {
  b_ = Start("b");
  const std::string key = CreateKey("org-r", {"usage:read"});
  const std::string path = "/v1/usage/orgs/org-r/quota";
  // The key reaches the second instance by its global store, without a request to the first.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline &&
         (status = Send("GET", path, "", Bearer(key), b_->port())->status) == 401) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(status, 401);

  auto revoked = a_->client().Delete("/v1/admin/api-keys/" + *auth::KeyIdOf(key));
  ASSERT_EQ(revoked->status, 200) << revoked->body;
  const auto revoked_at = std::chrono::steady_clock::now();
  while ((status = Send("GET", path, "", Bearer(key), b_->port())->status) != 401 &&
         std::chrono::steady_clock::now() < revoked_at + 1s) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(status, 401) << "the second instance still accepted the key a second after revoking";
  EXPECT_EQ(Send("GET", path, "", Bearer(key))->status, 401);
}

TEST_F(AuthTest, ForwardedRequestsWithoutTheClusterSignatureAreRefused) {
  const std::string path = "/v1/usage/orgs/org-a/quota";
  json admin_principal = {{"keyId", "x"}, {"organizationId", ""}, {"scopes", {"admin"}}};
  auto unsigned_copy =
      Send("GET", path, "",
           {{"X-Cm-Forwarded-By", "intruder"}, {"X-Cm-Principal", admin_principal.dump()}});
  EXPECT_EQ(unsigned_copy->status, 401) << unsigned_copy->body;
  const std::string ts = std::to_string(topology::WallClockMs() / 1000);
  auto forged = Send("GET", path, "",
                     {{"X-Cm-Forwarded-By", "intruder"},
                      {"X-Cm-Principal", admin_principal.dump()},
                      {"X-Cm-Forwarded-At", ts},
                      {"X-Cm-Cluster-Signature", std::string(64, 'a')}});
  EXPECT_EQ(forged->status, 401) << forged->body;
  // A real key does not make a forged forwarding header acceptable either.
  httplib::Headers with_key = Bearer(testing::kTestAdminKey);
  with_key.emplace("X-Cm-Forwarded-By", "intruder");
  EXPECT_EQ(Send("GET", path, "", with_key)->status, 401);
}

// Two instances started together each write CM_ADMIN_KEY when neither has read the other's
// record yet, with creation times a second apart: both start, whichever record stays.
TEST_F(AuthTest, InstancesStartingTogetherBothTakeTheAdminKeyWhicheverRecordStays) {
  b_ = Start("b");
  for (int round = 0; round < 5; ++round) {
    auto made = auth::CreateApiKey("", {"admin"}, "", "admin", topology::WallClockMs());
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    const std::string token = made->token;
    const int64_t now = topology::WallClockMs();
    std::latch go(2);
    state::Status on_a, on_b;
    std::thread starting_b([&] {
      go.arrive_and_wait();
      on_b = auth::EnsureAdminKey(b_->streams(), b_->commands(), token, now + 1000, 10s);
    });
    go.arrive_and_wait();
    on_a = auth::EnsureAdminKey(a_->streams(), a_->commands(), token, now, 10s);
    starting_b.join();
    EXPECT_TRUE(on_a.ok()) << "round " << round << ": " << on_a.ToString();
    EXPECT_TRUE(on_b.ok()) << "round " << round << ": " << on_b.ToString();
    for (int port : {a_->port(), b_->port()}) {
      auto r = Send("GET", "/v1/admin/api-keys", "", Bearer(token), port);
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200) << r->body;
    }
  }
}

TEST_F(AuthTest, KeysAreLoadedFromTheGlobalStoreBeforeARestartedInstanceIsReady) {
  const std::string key = CreateKey("org-k", {"usage:read"});
  a_.reset();
  a_ = Start("a");  // Start returns once ready: the global store is restored by then
  auto r = Send("GET", "/v1/usage/orgs/org-k/quota", "", Bearer(key));
  EXPECT_EQ(r->status, 200) << r->body;
  int status = 0;
  json ready = a_->GetJson("/ready", &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(ready["globalStores"]["restored"], true) << ready.dump();
}

// A store kept across a broker that was replaced (an embedded broker starts empty): keys the new
// topic does not hold must not keep working from the old local copy.
TEST_F(AuthTest, AGlobalStoreOlderThanItsTopicIsRebuiltFromTheTopic) {
  const std::string key = CreateKey("org-old", {"usage:read"});
  ASSERT_EQ(Send("GET", "/v1/usage/orgs/org-old/quota", "", Bearer(key))->status, 200);
  a_.reset();
  // Only the global store's directory stays; the tasks start afresh on the new broker.
  for (const auto& entry : std::filesystem::directory_iterator(dir_ / "a" / "it-auth"))
    if (entry.path().filename() != "global") std::filesystem::remove_all(entry.path());
  auto broker = testing::StartUsageBroker(2);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  broker_ = std::move(broker).value();
  a_ = Start("a");
  EXPECT_EQ(Send("GET", "/v1/usage/orgs/org-old/quota", "", Bearer(key))->status, 401);
  EXPECT_EQ(Send("GET", "/v1/usage/orgs/org-old/quota", "", Bearer(testing::kTestAdminKey))->status,
            200);
}

}  // namespace
}  // namespace cm
