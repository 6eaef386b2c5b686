// getUserTeams: the user index, fed by memberships re-keyed by user through a repartition
// topic, across organizations, paginated.
#include "teams_test_support.h"

namespace cm::teams::testing {
namespace {

std::vector<std::string> Ids(const json& page) {
  std::vector<std::string> out;
  for (const auto& e : page["teams"]) out.push_back(e.value("teamId", ""));
  return out;
}

TEST(TeamsUserTeams, FollowsEveryMembershipChangeAcrossOrganizations) {
  TeamsHarness h({}, 4);
  const std::vector<std::string> orgs = {"org-a", "org-b"};
  const std::string a = h.Create("org-a", "Alpha", "alice");
  const std::string b = h.Create("org-b", "Beta", "bob");
  auto expect_consistent = [&](const char* when) {
    for (const char* u : {"alice", "bob", "carol", "zed"})
      EXPECT_EQ(h.IndexedTeamsOf(u), h.MembershipsOf(u, orgs)) << when << ", user " << u;
  };
  expect_consistent("after create");
  EXPECT_EQ(h.IndexedTeamsOf("alice"), (std::set<std::string>{"org-a/" + a + "/owner/Alpha"}));

  ASSERT_EQ(Status(h.Add(b, "alice", "member", "bob")), 201);
  ASSERT_EQ(Status(h.Add(a, "carol", "admin", "alice")), 201);
  expect_consistent("after adds");
  json page = h.UserTeams("alice");
  EXPECT_EQ(page["total"], 2);
  EXPECT_EQ(page["hasMore"], false);
  // Ordered by organization, then team; each entry says where and with which role.
  EXPECT_EQ(Ids(page), (std::vector<std::string>{a, b}));
  EXPECT_EQ(page["teams"][1]["organizationId"], "org-b");
  EXPECT_EQ(page["teams"][1]["role"], "member");
  EXPECT_EQ(page["teams"][1]["addedBy"], "bob");

  ASSERT_EQ(Status(h.SetRole(b, "alice", "admin", "bob")), 200);
  ASSERT_EQ(Status(h.Send("org-a", kUpdateTeam, "alice", {{"teamId", a}, {"name", "Alpha 2"}})),
            200);
  expect_consistent("after a role change and a rename");
  EXPECT_TRUE(h.IndexedTeamsOf("carol").contains("org-a/" + a + "/admin/Alpha 2"));

  ASSERT_EQ(Status(h.Remove(b, "alice", "bob")), 200);
  expect_consistent("after a removal");
  const std::string b2 = h.Create("org-b", "Beta 2", "bob");
  ASSERT_EQ(Status(h.Add(b2, "carol", "member", "bob")), 201);
  ASSERT_EQ(Status(h.Delete(b2, "bob", {{"reassignTo", b}})), 200);
  expect_consistent("after a delete that reassigns");
  EXPECT_TRUE(h.IndexedTeamsOf("carol").contains("org-b/" + b + "/member/Beta"));

  // A refused command changes no index entry.
  EXPECT_EQ(Status(h.Add(b, "zed", "member", "carol")), 403);
  expect_consistent("after a refusal");

  // The index is a logged store: it survives a restart.
  h.driver().Commit();
  ASSERT_TRUE(h.driver().Restart().ok());
  expect_consistent("after a restart");
}

TEST(TeamsUserTeams, PagesWithACursorAndCountsOnlyVisibleOrganizations) {
  TeamsHarness h;
  std::vector<std::string> teams;
  for (int i = 0; i < 5; ++i) teams.push_back(h.Create("org-a", "A" + std::to_string(i), "dana"));
  for (int i = 0; i < 2; ++i) teams.push_back(h.Create("org-b", "B" + std::to_string(i), "dana"));
  std::sort(teams.begin(), teams.begin() + 5);
  std::sort(teams.begin() + 5, teams.end());

  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  for (;; ++pages) {
    json page = h.UserTeams("dana", cursor, 3);
    EXPECT_EQ(page["total"], 7);
    for (auto& id : Ids(page)) seen.push_back(id);
    if (!page["hasMore"].get<bool>()) {
      EXPECT_TRUE(page["nextCursor"].is_null());
      break;
    }
    EXPECT_EQ(page["teams"].size(), 3u);
    cursor = page["nextCursor"].get<std::string>();
  }
  EXPECT_EQ(pages, 2);  // 3 + 3 + 1
  EXPECT_EQ(seen, teams);

  auto only_b = GetUserTeams(h.UserIndex("dana"), {"dana", "", 50}, [](const json& e) {
    return e.value("organizationId", "") == "org-b";
  });
  ASSERT_TRUE(only_b.ok());
  EXPECT_EQ((*only_b)["total"], 2);
  EXPECT_EQ(Ids(*only_b), (std::vector<std::string>(teams.begin() + 5, teams.end())));

  // A cursor that is not one of ours, or another user's, is refused.
  EXPECT_FALSE(
      GetUserTeams(h.UserIndex("dana"), {"dana", "zz", 3}, [](const json&) { return true; }).ok());
  json erin = h.UserTeams("erin");
  EXPECT_EQ(erin["total"], 0);
  EXPECT_TRUE(erin["teams"].empty());
  const std::string dana_cursor = h.UserTeams("dana", "", 1)["nextCursor"];
  EXPECT_FALSE(GetUserTeams(h.UserIndex("erin"), {"erin", dana_cursor, 3}, [](const json&) {
                 return true;
               }).ok());
}

}  // namespace
}  // namespace cm::teams::testing
