// The permission table, inheritance down the tree, and the materialized grants checked
// against a naive recomputation after every step of a long random run.
#include <random>

#include "processors/teams/roles.h"
#include "state/key_codec.h"
#include "teams_test_support.h"

namespace cm::teams::testing {
namespace {

TEST(TeamsPermissions, TheTableIsCumulative) {
  EXPECT_EQ(
      PermissionsOf(Role::kMember),
      (std::vector<std::string>{"team.read", "members.read", "documents.read", "documents.write"}));
  for (const auto& p : PermissionsOf(Role::kMember)) EXPECT_TRUE(RoleHas(Role::kAdmin, p));
  for (const auto& p : PermissionsOf(Role::kAdmin)) EXPECT_TRUE(RoleHas(Role::kOwner, p));
  EXPECT_TRUE(RoleHas(Role::kAdmin, "members.manage"));
  EXPECT_FALSE(RoleHas(Role::kAdmin, "team.delete"));
  EXPECT_EQ(PermissionsOf(Role::kOwner).size(), AllPermissions().size());
  EXPECT_FALSE(LeastRoleWith("teams.fly"));
}

TEST(TeamsPermissions, ARoleAppliesInEveryDescendantWithItsSource) {
  TeamsHarness h;
  const std::string root = h.Create("org-a", "Root", "alice");
  const std::string mid = h.Create("org-a", "Mid", "alice", root);
  const std::string leaf = h.Create("org-a", "Leaf", "alice", mid);
  h.Add(root, "rita", "admin", "alice");
  h.Add(leaf, "rita", "member", "alice");
  json check = h.Check(leaf, "rita", "members.manage");
  EXPECT_TRUE(check["allowed"]);
  EXPECT_EQ(check["grantedBy"]["teamId"], root);
  EXPECT_EQ(check["grantedBy"]["inherited"], true);
  EXPECT_NE(check["reason"].get<std::string>().find(root), std::string::npos);
  EXPECT_NE(check["reason"].get<std::string>().find("admin"), std::string::npos);

  auto eff = h.Queries("org-a").GetEffectivePermissions(leaf, "rita");
  ASSERT_TRUE(eff.ok());
  EXPECT_EQ((*eff)["role"], "admin");
  EXPECT_EQ((*eff)["permissions"].size(), PermissionsOf(Role::kAdmin).size());
  // documents.read comes from both: the direct grant first.
  const json& read = (*eff)["sources"]["documents.read"];
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[0]["teamId"], leaf);
  EXPECT_EQ(read[0]["source"], "direct");
  EXPECT_EQ(read[1]["teamId"], root);
  EXPECT_EQ(read[1]["inherited"], true);
  ASSERT_EQ((*eff)["sources"]["members.manage"].size(), 1u);
  EXPECT_EQ((*eff)["sources"]["members.manage"][0]["teamId"], root);
  // A sibling subtree sees nothing of leaf's grant.
  const std::string other = h.Create("org-a", "Other", "alice", root);
  EXPECT_EQ(h.Check(other, "rita", "documents.read")["grantedBy"]["teamId"], root);
}

TEST(TeamsPermissions, ReasonsSayWhyNot) {
  TeamsHarness h;
  const std::string t = h.Create("org-a", "T", "alice");
  h.Add(t, "mo", "member", "alice");
  json none = h.Check(t, "nobody", "team.read");
  EXPECT_FALSE(none["allowed"]);
  EXPECT_NE(none["reason"].get<std::string>().find("no role"), std::string::npos);
  json weak = h.Check(t, "mo", "team.delete");
  EXPECT_FALSE(weak["allowed"]);
  EXPECT_NE(weak["reason"].get<std::string>().find("needs owner"), std::string::npos);
  EXPECT_EQ(h.Queries("org-a").CheckPermission(t, "mo", "fly").status().code(),
            state::Status::Code::kInvalidArgument);
}

TEST(TeamsPermissions, InheritanceFollowsMovesAndDeletes) {
  TeamsHarness h;
  const std::string a = h.Create("org-a", "A", "alice");
  const std::string b = h.Create("org-a", "B", "bob");
  const std::string kid = h.Create("org-a", "Kid", "alice", a);
  h.Add(b, "alice", "admin", "bob");
  h.Add(a, "ann", "member", "alice");
  EXPECT_TRUE(h.Allowed(kid, "ann", "documents.read"));
  EXPECT_FALSE(h.Allowed(kid, "bob", "documents.read"));
  ASSERT_EQ(Status(h.Move(kid, b, "alice")), 200);
  EXPECT_FALSE(h.Allowed(kid, "ann", "documents.read"));  // A's grants left with the move
  EXPECT_TRUE(h.Allowed(kid, "bob", "team.delete"));      // B's owner reaches it now
  EXPECT_TRUE(h.Allowed(kid, "alice", "team.delete"));    // her direct ownership stays
  ASSERT_EQ(Status(h.Delete(b, "bob")), 200);
  EXPECT_FALSE(h.Allowed(kid, "bob", "documents.read"));
  EXPECT_TRUE(h.Graph("org-a").Team("org-a", kid)->value("parentTeamId", json()).is_null());
}

// A long random run of every command kind, some refused; after each step the materialized
// grants of every team equal a recomputation from memberships and parents.
TEST(TeamsPermissions, MaterializedGrantsEqualANaiveRecomputationThroughoutARandomRun) {
  TeamsHarness h({}, 1);
  std::mt19937 rng(20261202);
  const std::vector<std::string> users = {"u0", "u1", "u2", "u3", "u4", "u5"};
  const std::vector<std::string> roles = {"member", "admin", "owner"};
  std::vector<std::string> teams;
  auto pick = [&](const auto& v) { return v[rng() % v.size()]; };
  int applied = 0;
  for (int step = 0; step < 2000; ++step) {
    const int kind = teams.size() < 3 ? 0 : static_cast<int>(rng() % 8);
    const std::string actor = pick(users);
    json r;
    switch (kind) {
      case 0: {
        json f = {{"name", "team-" + std::to_string(step)}};
        if (!teams.empty() && rng() % 3 != 0) f["parentTeamId"] = pick(teams);
        r = h.Send("org-r", kCreateTeam, actor, f);
        if (Status(r) == 201) teams.push_back(r["body"]["id"]);
        break;
      }
      case 1:
      case 2:
        r = h.Add(pick(teams), pick(users), pick(roles), actor);
        break;
      case 3:
        r = h.SetRole(pick(teams), pick(users), pick(roles), actor);
        break;
      case 4:
        r = h.Remove(pick(teams), pick(users), actor);
        break;
      case 5:
        r = h.Move(pick(teams), rng() % 4 == 0 ? "" : pick(teams), actor);
        break;
      case 6: {
        if (rng() % 4 != 0) {  // deletes are rarer than the rest
          r = h.Add(pick(teams), pick(users), pick(roles), actor);
          break;
        }
        json extra = json::object();
        if (rng() % 2) extra["deleteSubteams"] = true;
        if (rng() % 2) extra["reassignTo"] = pick(teams);
        r = h.Delete(pick(teams), actor, extra);
        break;
      }
      default:
        r = h.SetRole(pick(teams), pick(users), pick(roles), actor);
        break;
    }
    ASSERT_TRUE(r.is_object() && r.contains("status")) << "step " << step;
    applied += Status(r) < 300;
    TeamGraph g = h.Graph("org-r");
    teams = g.TeamsOf("org-r");
    for (const auto& t : teams) {
      ASSERT_EQ(g.MaterializedGrantsOf("org-r", t), g.NaiveGrantsOf("org-r", t))
          << "step " << step << " team " << t << " after " << r.dump();
    }
    // The user index (another task, fed through the repartition topic) follows every change.
    if (step % 25 == 0 || step == 1999) {
      for (const auto& u : users)
        ASSERT_EQ(h.IndexedTeamsOf(u), h.MembershipsOf(u, {"org-r"})) << "step " << step;
    }
    // No grants linger for teams that are gone.
    size_t grant_teams = 0;
    h.Views("org-r").permissions->Range("", "", [&](std::string_view k, std::string_view) {
      ++grant_teams;
      size_t pos = 1;
      std::string org, team;
      state::ReadLengthPrefixed(k, pos, org);
      state::ReadLengthPrefixed(k, pos, team);
      EXPECT_TRUE(g.Team(org, team)) << "grants for deleted team " << team;
      return true;
    });
    if (teams.empty()) {
      EXPECT_EQ(grant_teams, 0u);
    }
  }
  EXPECT_GT(applied, 200);  // the run exercised real changes, not only refusals
}

}  // namespace
}  // namespace cm::teams::testing
