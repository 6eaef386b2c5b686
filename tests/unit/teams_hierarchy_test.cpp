// getHierarchy and moveTeam: cycles, organizations, secret teams, the depth limit.
#include "teams_test_support.h"

namespace cm::teams::testing {
namespace {

TEST(TeamsHierarchy, AncestorsDescendantsAndBothWithDepth) {
  TeamsHarness h;
  const std::string root = h.Create("org-a", "Root", "alice");
  const std::string mid = h.Create("org-a", "Mid", "alice", root);
  const std::string leaf = h.Create("org-a", "Leaf", "alice", mid);
  const std::string side = h.Create("org-a", "Side", "alice", root);
  auto q = h.Queries("org-a");
  auto up = q.GetHierarchy(leaf, "ancestors");
  ASSERT_TRUE(up.ok());
  EXPECT_EQ((*up)["team"]["id"], leaf);
  EXPECT_EQ((*up)["depth"], 2);
  ASSERT_EQ((*up)["ancestors"].size(), 2u);
  EXPECT_EQ((*up)["ancestors"][0]["id"], mid);
  EXPECT_EQ((*up)["ancestors"][1]["id"], root);
  EXPECT_TRUE((*up)["descendants"].empty());

  auto down = q.GetHierarchy(root, "descendants");
  ASSERT_TRUE(down.ok());
  const json& d = (*down)["descendants"];
  ASSERT_EQ(d.size(), 2u);
  for (const auto& node : d) {
    EXPECT_EQ(node["depth"], 1);
    if (node["team"]["id"] == mid) {
      ASSERT_EQ(node["children"].size(), 1u);
      EXPECT_EQ(node["children"][0]["team"]["id"], leaf);
      EXPECT_EQ(node["children"][0]["depth"], 2);
    } else {
      EXPECT_EQ(node["team"]["id"], side);
    }
  }
  EXPECT_TRUE((*down)["ancestors"].empty());
  auto both = q.GetHierarchy(mid, "both");
  ASSERT_TRUE(both.ok());
  EXPECT_EQ((*both)["ancestors"].size(), 1u);
  EXPECT_EQ((*both)["descendants"].size(), 1u);
  EXPECT_EQ(q.GetHierarchy(mid, "sideways").status().code(), state::Status::Code::kInvalidArgument);
}

TEST(TeamsHierarchy, AnEmptyTeamHasAnEmptyHierarchy) {
  TeamsHarness h;
  const std::string solo = h.Create("org-a", "Solo", "alice");
  auto r = h.Queries("org-a").GetHierarchy(solo, "both");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)["ancestors"].empty());
  EXPECT_TRUE((*r)["descendants"].empty());
  EXPECT_EQ((*r)["depth"], 0);
}

TEST(TeamsHierarchy, EveryCycleShapeIsRefused) {
  TeamsHarness h;
  const std::string a = h.Create("org-a", "A", "alice");
  const std::string b = h.Create("org-a", "B", "alice", a);
  const std::string c = h.Create("org-a", "C", "alice", b);
  const std::string d = h.Create("org-a", "D", "alice", c);
  const auto before = h.Dump("org-a");
  for (const auto& [team, target] : std::vector<std::pair<std::string, std::string>>{
           {a, a}, {a, b}, {a, c}, {a, d}, {b, b}, {b, c}, {b, d}, {c, d}, {d, d}}) {
    json r = h.Move(team, target, "alice");
    EXPECT_EQ(Status(r), 422) << team << " under " << target;
    EXPECT_EQ(Code(r), "cycle");
  }
  EXPECT_EQ(h.Dump("org-a"), before);
  // Moves that do not close a loop are fine.
  EXPECT_EQ(Status(h.Move(d, a, "alice")), 200);
  EXPECT_EQ(Status(h.Move(b, "", "alice")), 200);
  EXPECT_EQ(Status(h.Move(a, c, "alice")), 200);
}

TEST(TeamsHierarchy, MovesAcrossOrganizationsAreRefused) {
  TeamsHarness h;
  const std::string a = h.Create("org-a", "A", "alice");
  const std::string b = h.Create("org-b", "B", "alice");
  json r = h.Move(a, b, "alice");
  EXPECT_EQ(Status(r), 422);
  EXPECT_EQ(Code(r), "cross_organization");
}

TEST(TeamsHierarchy, SecretTeamsNeitherNestNorHaveSubteams) {
  TeamsHarness h;
  const std::string root = h.Create("org-a", "Root", "alice");
  const std::string secret = h.Create("org-a", "Hush", "alice", "", "secret");
  const std::string plain = h.Create("org-a", "Plain", "alice");
  EXPECT_EQ(Code(h.Move(secret, root, "alice")), "secret_nesting");
  EXPECT_EQ(Code(h.Move(plain, secret, "alice")), "secret_nesting");
  json child = h.Send("org-a", kCreateTeam, "alice", {{"name", "Kid"}, {"parentTeamId", secret}});
  EXPECT_EQ(Code(child), "secret_nesting");
  json nested_secret = h.Send("org-a", kCreateTeam, "alice",
                              {{"name", "S2"}, {"parentTeamId", root}, {"visibility", "secret"}});
  EXPECT_EQ(Code(nested_secret), "secret_nesting");
  const std::string kid = h.Create("org-a", "Kid", "alice", root);
  EXPECT_EQ(
      Code(h.Send("org-a", kUpdateTeam, "alice", {{"teamId", kid}, {"visibility", "secret"}})),
      "secret_nesting");
  EXPECT_EQ(
      Code(h.Send("org-a", kUpdateTeam, "alice", {{"teamId", root}, {"visibility", "secret"}})),
      "secret_nesting");
  EXPECT_EQ(Status(h.Move(secret, "", "alice")), 200);  // already a root: no change
}

TEST(TeamsHierarchy, DepthIsLimitedToThirtyTwoLevels) {
  TeamsHarness h;
  std::vector<std::string> chain = {h.Create("org-a", "L1", "alice")};
  for (int level = 2; level <= 32; ++level)
    chain.push_back(h.Create("org-a", "L" + std::to_string(level), "alice", chain.back()));
  json deeper =
      h.Send("org-a", kCreateTeam, "alice", {{"name", "L33"}, {"parentTeamId", chain.back()}});
  EXPECT_EQ(Status(deeper), 422);
  EXPECT_EQ(Code(deeper), "depth_exceeded");
  // A two-level subtree cannot go under level 31 either.
  const std::string top = h.Create("org-a", "Top", "alice");
  h.Create("org-a", "Below", "alice", top);
  EXPECT_EQ(Code(h.Move(top, chain[30], "alice")), "depth_exceeded");
  EXPECT_EQ(Status(h.Move(top, chain[29], "alice")), 200);  // levels 31 and 32
  // The owner of the root holds owner 32 levels down.
  EXPECT_TRUE(h.Allowed(chain.back(), "alice", "team.delete"));
  auto hierarchy = h.Queries("org-a").GetHierarchy(chain.back(), "ancestors");
  ASSERT_TRUE(hierarchy.ok());
  EXPECT_EQ((*hierarchy)["ancestors"].size(), 31u);
}

TEST(TeamsHierarchy, MovingNeedsOwnerOfTheTeamAndAdminOfTheNewParent) {
  TeamsHarness h;
  const std::string a = h.Create("org-a", "A", "alice");
  const std::string b = h.Create("org-a", "B", "bob");
  json r = h.Move(a, b, "alice");  // alice has no role in B
  EXPECT_EQ(Status(r), 403);
  EXPECT_EQ(r["body"]["error"]["details"]["permission"], "subteams.create");
  h.Add(b, "alice", "admin", "bob");
  h.Add(a, "carl", "admin", "alice");
  EXPECT_EQ(Status(h.Move(a, b, "carl")), 403);  // admin of A cannot move it
  json ok = h.Move(a, b, "alice");
  ASSERT_EQ(Status(ok), 200) << ok.dump();
  EXPECT_EQ(ok["body"]["parentTeamId"], b);
  auto events = h.Events();
  EXPECT_EQ(events.back()["type"], "team.moved");
  EXPECT_EQ(events.back()["data"]["newParentId"], b);
}

}  // namespace
}  // namespace cm::teams::testing
