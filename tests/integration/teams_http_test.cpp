// The teams application over HTTP, in process, wired as `cmstream run --topology cloudmatrix`
// wires it (usage_instance.h): commands appended to cloudmatrix.commands and awaited, reads on
// the owning task, actors from the API key, events on cloudmatrix.team-events.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "kafka_clients.h"
#include "usage_instance.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class TeamsHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("cm-it-teams-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    auto broker = testing::StartUsageBroker(2);
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
    instance_ = std::make_unique<testing::UsageInstance>(
        *broker_, testing::UsageInstanceOptions{.application_id = "it-teams",
                                                .state_dir = (dir_ / "state").string()});
    auto started = instance_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
  }
  void TearDown() override {
    instance_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::string Key(const std::string& org, const std::string& user,
                  std::vector<std::string> scopes = {"teams:read", "teams:write"}) {
    json body = {{"organizationId", org}, {"scopes", scopes}, {"userId", user}, {"name", "t"}};
    auto r = Call("POST", "/v1/admin/api-keys", body, testing::kTestAdminKey);
    EXPECT_EQ(r.first, 201) << r.second.dump();
    return r.second.value("key", "");
  }

  std::pair<int, json> Call(const std::string& method, const std::string& path, const json& body,
                            const std::string& key, const std::string& idempotency_key = "") {
    httplib::Client c("127.0.0.1", instance_->port());
    c.set_read_timeout(30, 0);
    httplib::Headers h = {{"Authorization", "Bearer " + key}};
    if (!idempotency_key.empty()) h.emplace("Idempotency-Key", idempotency_key);
    const std::string text = body.is_null() ? "" : body.dump();
    httplib::Result r = method == "GET"     ? c.Get(path, h)
                        : method == "POST"  ? c.Post(path, h, text, "application/json")
                        : method == "PATCH" ? c.Patch(path, h, text, "application/json")
                                            : c.Delete(path, h, text, "application/json");
    if (!r) return {0, json()};
    return {r->status, json::parse(r->body, nullptr, false)};
  }

  std::string CreateTeam(const std::string& key, const std::string& name,
                         const std::string& parent = "", json extra = json::object()) {
    extra["name"] = name;
    if (!parent.empty()) extra["parentTeamId"] = parent;
    auto r = Call("POST", "/v1/teams", extra, key);
    EXPECT_EQ(r.first, 201) << r.second.dump();
    return r.second.value("id", "");
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestBroker> broker_;
  std::unique_ptr<testing::UsageInstance> instance_;
};

TEST_F(TeamsHttpTest, CreateReadUpdateAndDeleteATeam) {
  const std::string alice = Key("org-a", "alice");
  const std::string id = CreateTeam(alice, "Platform", "", {{"visibility", "public"}});
  ASSERT_EQ(id.rfind("org-a~t", 0), 0u) << id;
  auto got =
      Call("GET", "/v1/teams/" + id + "?includeMembers=true&includeSubteams=true", nullptr, alice);
  ASSERT_EQ(got.first, 200) << got.second.dump();
  EXPECT_EQ(got.second["name"], "Platform");
  ASSERT_EQ(got.second["members"].size(), 1u);
  EXPECT_EQ(got.second["members"][0]["userId"], "alice");
  EXPECT_EQ(got.second["members"][0]["role"], "owner");
  EXPECT_TRUE(got.second["subteams"].empty());

  auto patched = Call("PATCH", "/v1/teams/" + id, {{"settings", {{"a", 1}}}}, alice);
  ASSERT_EQ(patched.first, 200) << patched.second.dump();
  patched = Call("PATCH", "/v1/teams/" + id, {{"settings", {{"b", 2}}}}, alice);
  EXPECT_EQ(patched.second["settings"], (json{{"a", 1}, {"b", 2}}));

  auto bad = Call("POST", "/v1/teams", {{"name", ""}}, alice);
  EXPECT_EQ(bad.first, 400);
  EXPECT_EQ(bad.second["error"]["details"]["field"], "name");
  auto dup = Call("POST", "/v1/teams", {{"name", "PLATFORM"}}, alice);
  EXPECT_EQ(dup.first, 409);

  auto deleted = Call("DELETE", "/v1/teams/" + id, nullptr, alice);
  ASSERT_EQ(deleted.first, 200) << deleted.second.dump();
  EXPECT_EQ(deleted.second["deleted"], true);
  EXPECT_EQ(Call("GET", "/v1/teams/" + id, nullptr, alice).first, 404);
}

TEST_F(TeamsHttpTest, TheActorIsTheKeysUserUnlessAnAdminNamesAnother) {
  const std::string alice = Key("org-a", "alice");
  const std::string nobody = Key("org-a", "");
  auto as_bob = Call("POST", "/v1/teams", {{"name", "X"}, {"actorUserId", "bob"}}, alice);
  EXPECT_EQ(as_bob.first, 403) << as_bob.second.dump();
  auto userless = Call("POST", "/v1/teams", {{"name", "X"}}, nobody);
  EXPECT_EQ(userless.first, 403);
  EXPECT_NE(userless.second["error"]["message"].get<std::string>().find("userId"),
            std::string::npos);
  auto admin_alone = Call("POST", "/v1/teams", {{"name", "X"}, {"organizationId", "org-a"}},
                          testing::kTestAdminKey);
  EXPECT_EQ(admin_alone.first, 403);
  auto admin_as_carol = Call("POST", "/v1/teams",
                             {{"name", "X"}, {"organizationId", "org-a"}, {"actorUserId", "carol"}},
                             testing::kTestAdminKey);
  ASSERT_EQ(admin_as_carol.first, 201) << admin_as_carol.second.dump();
  EXPECT_EQ(admin_as_carol.second["createdBy"], "carol");
  // alice has no role in carol's team.
  const std::string id = admin_as_carol.second["id"];
  auto denied = Call("POST", "/v1/teams/" + id + "/members", {{"userId", "dan"}}, alice);
  EXPECT_EQ(denied.first, 403);
  EXPECT_EQ(denied.second["error"]["details"]["permission"], "members.manage");
}

TEST_F(TeamsHttpTest, AnotherOrganizationsKeySeesNoTeam) {
  const std::string alice = Key("org-a", "alice");
  const std::string eve = Key("org-b", "eve");
  const std::string id = CreateTeam(alice, "Private");
  for (const auto& [method, path] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/teams/" + id},
           {"PATCH", "/v1/teams/" + id},
           {"DELETE", "/v1/teams/" + id},
           {"POST", "/v1/teams/" + id + "/members"},
           {"GET", "/v1/teams/" + id + "/hierarchy"},
           {"GET", "/v1/teams/" + id + "/permissions/alice"}}) {
    auto r = Call(method, path, {{"userId", "eve"}, {"name", "mine"}}, eve);
    EXPECT_EQ(r.first, 404) << method << " " << path;
    EXPECT_EQ(r.second.dump().find("Private"), std::string::npos);
  }
  EXPECT_EQ(Call("POST", "/v1/teams", {{"name", "x"}, {"organizationId", "org-a"}}, eve).first,
            404);
}

TEST_F(TeamsHttpTest, MembersHierarchyAndPermissionsOverHttp) {
  const std::string alice = Key("org-a", "alice");
  const std::string root = CreateTeam(alice, "Root");
  const std::string child = CreateTeam(alice, "Child", root);
  auto added =
      Call("POST", "/v1/teams/" + root + "/members", {{"userId", "bob"}, {"role", "admin"}}, alice);
  ASSERT_EQ(added.first, 201) << added.second.dump();
  EXPECT_EQ(Call("POST", "/v1/teams/" + root + "/members", {{"userId", "bob"}}, alice).first, 409);
  auto check =
      Call("GET", "/v1/teams/" + child + "/permissions/bob/check?permission=members.manage",
           nullptr, alice);
  ASSERT_EQ(check.first, 200) << check.second.dump();
  EXPECT_TRUE(check.second["allowed"]);
  EXPECT_EQ(check.second["grantedBy"]["teamId"], root);
  auto eff = Call("GET", "/v1/teams/" + child + "/permissions/bob", nullptr, alice);
  ASSERT_EQ(eff.first, 200);
  EXPECT_EQ(eff.second["sources"]["members.manage"][0]["inherited"], true);
  EXPECT_EQ(Call("GET", "/v1/teams/" + child + "/permissions/bob/check", nullptr, alice).first,
            400);

  auto role = Call("PATCH", "/v1/teams/" + root + "/members/bob", {{"role", "member"}}, alice);
  ASSERT_EQ(role.first, 200) << role.second.dump();
  check = Call("GET", "/v1/teams/" + child + "/permissions/bob/check?permission=members.manage",
               nullptr, alice);
  EXPECT_FALSE(check.second["allowed"]);
  auto last = Call("DELETE", "/v1/teams/" + root + "/members/alice", nullptr, alice);
  EXPECT_EQ(last.first, 403);
  EXPECT_EQ(last.second["error"]["details"]["reason"], "last_owner");
  EXPECT_EQ(Call("DELETE", "/v1/teams/" + root + "/members/bob", nullptr, alice).first, 200);

  auto cycle = Call("POST", "/v1/teams/" + root + "/move", {{"newParentId", child}}, alice);
  EXPECT_EQ(cycle.first, 422);
  EXPECT_EQ(cycle.second["error"]["code"], "cycle");
  auto hierarchy =
      Call("GET", "/v1/teams/" + child + "/hierarchy?direction=ancestors", nullptr, alice);
  ASSERT_EQ(hierarchy.first, 200);
  EXPECT_EQ(hierarchy.second["ancestors"][0]["id"], root);
  auto moved = Call("POST", "/v1/teams/" + child + "/move", {{"newParentId", nullptr}}, alice);
  ASSERT_EQ(moved.first, 200) << moved.second.dump();
  EXPECT_TRUE(moved.second["parentTeamId"].is_null());
}

TEST_F(TeamsHttpTest, AUsersTeamsAcrossOrganizationsThroughTheUserIndex) {
  const std::string alice_a = Key("org-a", "alice");
  const std::string bob_b = Key("org-b", "bob");
  const std::string admin = testing::kTestAdminKey;
  const std::string a1 = CreateTeam(alice_a, "A1");
  const std::string a2 = CreateTeam(alice_a, "A2");
  const std::string b1 = CreateTeam(bob_b, "B1");
  ASSERT_EQ(
      Call("POST", "/v1/teams/" + b1 + "/members", {{"userId", "alice"}, {"role", "admin"}}, bob_b)
          .first,
      201);
  // The index is fed asynchronously (a repartition topic): wait until it shows all three.
  auto teams_of = [&](const std::string& key, const std::string& query = "") {
    return Call("GET", "/v1/users/alice/teams" + query, json(), key);
  };
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  std::pair<int, json> all;
  do {
    all = teams_of(admin);
    if (all.first == 200 && all.second.value("total", 0) == 3) break;
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(all.first, 200) << all.second.dump();
  ASSERT_EQ(all.second["total"], 3) << all.second.dump();
  std::map<std::string, std::string> roles;
  for (const auto& t : all.second["teams"]) roles[t["teamId"]] = t["role"];
  EXPECT_EQ(roles,
            (std::map<std::string, std::string>{{a1, "owner"}, {a2, "owner"}, {b1, "admin"}}));

  // An organization's key sees only that organization's teams of the user.
  auto seen_by_b = teams_of(bob_b);
  ASSERT_EQ(seen_by_b.first, 200);
  EXPECT_EQ(seen_by_b.second["total"], 1);
  EXPECT_EQ(seen_by_b.second["teams"][0]["teamId"], b1);
  EXPECT_EQ(seen_by_b.second["teams"][0]["teamName"], "B1");

  // Pages follow nextCursor.
  auto first = teams_of(admin, "?limit=2");
  ASSERT_EQ(first.first, 200);
  EXPECT_EQ(first.second["teams"].size(), 2u);
  ASSERT_TRUE(first.second["hasMore"].get<bool>());
  auto second = teams_of(admin, "?limit=2&cursor=" + first.second["nextCursor"].get<std::string>());
  ASSERT_EQ(second.first, 200);
  EXPECT_EQ(second.second["teams"].size(), 1u);
  EXPECT_FALSE(second.second["hasMore"].get<bool>());

  // Bad input names the field.
  auto bad_limit = teams_of(admin, "?limit=0");
  EXPECT_EQ(bad_limit.first, 400);
  EXPECT_EQ(bad_limit.second["error"]["details"]["field"], "limit");
  auto bad_cursor = teams_of(admin, "?cursor=nothex");
  EXPECT_EQ(bad_cursor.first, 400);
  EXPECT_EQ(bad_cursor.second["error"]["details"]["field"], "cursor");
  EXPECT_EQ(Call("GET", "/v1/users/" + std::string(300, 'u') + "/teams", json(), admin).first, 400);
}

TEST_F(TeamsHttpTest, ASecretTeamIsSeenOnlyByItsMembersAndAdminKeys) {
  const std::string alice = Key("org-a", "alice");
  const std::string bob = Key("org-a", "bob");
  const std::string secret = CreateTeam(alice, "Hidden", "", {{"visibility", "secret"}});
  const std::string open = CreateTeam(alice, "Open");
  for (const std::string& path : {"/v1/teams/" + secret, "/v1/teams/" + secret + "/hierarchy",
                                  "/v1/teams/" + secret + "/permissions/alice"}) {
    auto hidden = Call("GET", path, json(), bob);
    EXPECT_EQ(hidden.first, 404) << path << " " << hidden.second.dump();
    EXPECT_EQ(hidden.second.dump().find("Hidden"), std::string::npos);
    EXPECT_EQ(Call("GET", path, json(), alice).first, 200) << path;
    EXPECT_EQ(Call("GET", path, json(), testing::kTestAdminKey).first, 200) << path;
  }
  EXPECT_EQ(Call("GET", "/v1/teams/" + open, json(), bob).first, 200);
  // Bob becomes a member: now he sees it.
  ASSERT_EQ(Call("POST", "/v1/teams/" + secret + "/members", {{"userId", "bob"}}, alice).first,
            201);
  EXPECT_EQ(Call("GET", "/v1/teams/" + secret, json(), bob).first, 200);

  // Alice's teams: her own key and an admin key list the secret one, Bob's key does not.
  auto count = [&](const std::string& key) {
    std::pair<int, json> r;
    // The index lags the commands by one repartition hop.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    do {
      r = Call("GET", "/v1/users/alice/teams", json(), testing::kTestAdminKey);
      if (r.first == 200 && r.second.value("total", 0) == 2) break;
      std::this_thread::sleep_for(50ms);
    } while (std::chrono::steady_clock::now() < deadline);
    r = Call("GET", "/v1/users/alice/teams", json(), key);
    return r.second.value("total", -1);
  };
  EXPECT_EQ(count(alice), 2);
  EXPECT_EQ(count(testing::kTestAdminKey), 2);
  EXPECT_EQ(count(bob), 1);
}

TEST_F(TeamsHttpTest, AnIdempotencyKeyAppliesOnceAndRefusesAnotherRequest) {
  const std::string alice = Key("org-a", "alice");
  auto first = Call("POST", "/v1/teams", {{"name", "Once"}}, alice, "key-1");
  auto again = Call("POST", "/v1/teams", {{"name", "Once"}}, alice, "key-1");
  ASSERT_EQ(first.first, 201);
  EXPECT_EQ(again.first, 201);
  EXPECT_EQ(first.second, again.second);
  auto other = Call("POST", "/v1/teams", {{"name", "Twice"}}, alice, "key-1");
  EXPECT_EQ(other.first, 422);
}

TEST_F(TeamsHttpTest, InvitationsOverHttp) {
  const std::string alice = Key("org-a", "alice");
  const std::string nina = Key("org-a", "nina");
  const std::string id = CreateTeam(alice, "Core");
  auto inv = Call("POST", "/v1/teams/" + id + "/invitations",
                  {{"email", "nina@example.com"}, {"role", "admin"}}, alice);
  ASSERT_EQ(inv.first, 201) << inv.second.dump();
  const std::string token = inv.second.value("token", "");
  ASSERT_GE(token.size(), 32u);
  EXPECT_EQ(inv.second["status"], "pending");
  auto accepted = Call("POST", "/v1/invitations/" + token + "/accept", nullptr, nina);
  ASSERT_EQ(accepted.first, 200) << accepted.second.dump();
  EXPECT_EQ(accepted.second["role"], "admin");
  EXPECT_EQ(Call("POST", "/v1/invitations/" + token + "/accept", nullptr, nina).first, 410);
  EXPECT_EQ(Call("POST", "/v1/invitations/cmi_6f72672d61.AAAA/accept", nullptr, nina).first, 404);
  EXPECT_EQ(Call("POST", "/v1/invitations/garbage/accept", nullptr, nina).first, 404);

  auto second =
      Call("POST", "/v1/teams/" + id + "/invitations", {{"email", "x@example.com"}}, alice);
  ASSERT_EQ(second.first, 201);
  auto revoked =
      Call("DELETE", "/v1/teams/" + id + "/invitations/" + second.second["id"].get<std::string>(),
           nullptr, alice);
  EXPECT_EQ(revoked.first, 200) << revoked.second.dump();
  EXPECT_EQ(Call("POST", "/v1/invitations/" + second.second["token"].get<std::string>() + "/accept",
                 nullptr, nina)
                .first,
            410);
}

// Fifty membership changes on one team from five clients at once: every one is applied, in
// some order, and the members, the materialized permissions and the events agree at the end.
TEST_F(TeamsHttpTest, FiftyConcurrentMembershipChangesEndConsistent) {
  const std::string alice = Key("org-a", "alice");
  const std::string id = CreateTeam(alice, "Busy");
  const std::string sub = CreateTeam(alice, "BusySub", id);
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  for (int c = 0; c < 5; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 10; ++i) {
        const std::string user = "user-" + std::to_string(c) + "-" + std::to_string(i);
        // Every client adds six users, promotes its first two, then removes its last two.
        std::pair<int, json> r;
        if (i < 6)
          r = Call("POST", "/v1/teams/" + id + "/members", {{"userId", user}, {"role", "member"}},
                   alice);
        else if (i < 8)
          r = Call("PATCH",
                   "/v1/teams/" + id + "/members/user-" + std::to_string(c) + "-" +
                       std::to_string(i - 6),
                   {{"role", "admin"}}, alice);
        else
          r = Call("DELETE",
                   "/v1/teams/" + id + "/members/user-" + std::to_string(c) + "-" +
                       std::to_string(i - 6 + 2),
                   nullptr, alice);
        if (r.first >= 200 && r.first < 300) {
          ++ok;
        } else {
          std::lock_guard<std::mutex> lock(failures_mutex);
          failures.push_back(std::to_string(r.first) + " " + r.second.dump());
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), 50) << (failures.empty() ? "" : failures.front());

  auto team = Call("GET", "/v1/teams/" + id + "?includeMembers=true", nullptr, alice);
  ASSERT_EQ(team.first, 200);
  std::map<std::string, std::string> members;
  for (const auto& m : team.second["members"]) members[m["userId"]] = m["role"];
  EXPECT_EQ(members.size(), 1u + 5 * 4);  // alice + 6 added - 2 removed per client
  for (int c = 0; c < 5; ++c) {
    const std::string p = "user-" + std::to_string(c) + "-";
    EXPECT_EQ(members[p + "0"], "admin");
    EXPECT_EQ(members[p + "1"], "admin");
    EXPECT_EQ(members[p + "2"], "member");
    EXPECT_EQ(members[p + "3"], "member");
    EXPECT_EQ(members.count(p + "4"), 0u);
    EXPECT_EQ(members.count(p + "5"), 0u);
  }
  // The subteam's materialized permissions agree with the parent's membership.
  for (const auto& [user, role] : members) {
    auto eff = Call("GET", "/v1/teams/" + sub + "/permissions/" + user, nullptr, alice);
    ASSERT_EQ(eff.first, 200);
    EXPECT_EQ(eff.second["role"], role) << user;
  }
  auto gone = Call("GET", "/v1/teams/" + sub + "/permissions/user-0-4/check?permission=team.read",
                   nullptr, alice);
  EXPECT_FALSE(gone.second["allowed"]);

  // Every change is on the topic once: 2 creates (team.created + member.added each) + 50.
  testing::TopicReader reader(broker_->bootstrap_servers(), "cloudmatrix.team-events", 2);
  std::vector<json> events;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (events.size() < 54 && std::chrono::steady_clock::now() < deadline) {
    for (auto& m : reader.Poll()) events.push_back(json::parse(m.value));
  }
  for (auto& m : reader.Poll(500)) events.push_back(json::parse(m.value));
  ASSERT_EQ(events.size(), 54u);
  std::set<std::string> ids;
  std::map<std::string, int> types;
  for (const auto& e : events) {
    ids.insert(e["id"].get<std::string>());
    ++types[e["type"].get<std::string>()];
    EXPECT_EQ(e["organizationId"], "org-a");
  }
  EXPECT_EQ(ids.size(), 54u);
  EXPECT_EQ(types["member.added"], 32);
  EXPECT_EQ(types["member.role_changed"], 10);
  EXPECT_EQ(types["member.removed"], 10);
}

TEST_F(TeamsHttpTest, TeamsSurviveARestartWithTheStateDirectoryDeleted) {
  const std::string alice = Key("org-a", "alice");
  const std::string root = CreateTeam(alice, "Root");
  const std::string child = CreateTeam(alice, "Child", root);
  ASSERT_EQ(Call("POST", "/v1/teams/" + root + "/members", {{"userId", "bob"}}, alice).first, 201);
  instance_->Stop();
  std::filesystem::remove_all(dir_ / "state");
  ASSERT_TRUE(instance_->Start().ok());
  auto check = Call("GET", "/v1/teams/" + child + "/permissions/bob/check?permission=team.read",
                    nullptr, alice);
  ASSERT_EQ(check.first, 200) << check.second.dump();
  EXPECT_TRUE(check.second["allowed"]);
  EXPECT_EQ(Call("POST", "/v1/teams", {{"name", "root"}}, alice).first, 409);
}

}  // namespace
}  // namespace cm
