// addMember, removeMember and updateMemberRole: who may manage whom, the last owner rule.
#include "teams_test_support.h"

namespace cm::teams::testing {
namespace {

class TeamsMembership : public ::testing::Test {
 protected:
  void SetUp() override {
    team_ = h_.Create("org-a", "Core", "alice");  // alice: owner
    h_.Add(team_, "adam", "admin", "alice");
    h_.Add(team_, "mia", "member", "alice");
    h_.Events();
  }
  TeamsHarness h_;
  std::string team_;
};

TEST_F(TeamsMembership, AddMemberReturnsTheMembershipAndEmitsMemberAdded) {
  json r = h_.Add(team_, "newbie", "member", "adam");
  ASSERT_EQ(Status(r), 201) << r.dump();
  EXPECT_EQ(r["body"]["teamId"], team_);
  EXPECT_EQ(r["body"]["userId"], "newbie");
  EXPECT_EQ(r["body"]["role"], "member");
  EXPECT_EQ(r["body"]["addedBy"], "adam");
  EXPECT_TRUE(r["body"].contains("joinedAt"));
  auto events = h_.Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "member.added");
  EXPECT_EQ(events[0]["actorUserId"], "adam");
}

TEST_F(TeamsMembership, AddingAMemberTwiceIs409) {
  json r = h_.Add(team_, "mia", "admin", "alice");
  EXPECT_EQ(Status(r), 409);
  EXPECT_EQ(Code(r), "conflict");
}

TEST_F(TeamsMembership, RoleMustBeKnown) {
  json r = h_.Add(team_, "x", "superuser", "alice");
  EXPECT_EQ(Status(r), 400);
  EXPECT_EQ(r["body"]["error"]["details"]["field"], "role");
  json missing =
      h_.Send("org-a", kUpdateMemberRole, "alice", {{"teamId", team_}, {"userId", "mia"}});
  EXPECT_EQ(Status(missing), 400);
}

TEST_F(TeamsMembership, OnlyAdminsAndOwnersManageMembers) {
  EXPECT_EQ(Status(h_.Add(team_, "x", "member", "mia")), 403);
  EXPECT_EQ(Status(h_.Add(team_, "x", "member", "stranger")), 403);
  EXPECT_EQ(Status(h_.Remove(team_, "adam", "mia")), 403);
  EXPECT_EQ(Status(h_.SetRole(team_, "mia", "admin", "mia")), 403);
  EXPECT_EQ(Status(h_.Add(team_, "x", "admin", "adam")), 201);
  EXPECT_EQ(Status(h_.Remove(team_, "x", "adam")), 200);
}

TEST_F(TeamsMembership, OnlyOwnersGrantOrTouchOwner) {
  json add = h_.Add(team_, "x", "owner", "adam");
  EXPECT_EQ(Status(add), 403);
  EXPECT_EQ(add["body"]["error"]["details"]["permission"], "owners.manage");
  EXPECT_EQ(Status(h_.SetRole(team_, "mia", "owner", "adam")), 403);
  EXPECT_EQ(Status(h_.SetRole(team_, "alice", "member", "adam")), 403);
  EXPECT_EQ(Status(h_.Remove(team_, "alice", "adam")), 403);
  EXPECT_EQ(Status(h_.SetRole(team_, "mia", "owner", "alice")), 200);
  EXPECT_EQ(Status(h_.Add(team_, "y", "owner", "alice")), 201);
}

TEST_F(TeamsMembership, TheLastOwnerCanNeitherLeaveNorBeDemoted) {
  json leave = h_.Remove(team_, "alice", "alice");
  EXPECT_EQ(Status(leave), 403);
  EXPECT_EQ(leave["body"]["error"]["details"]["reason"], "last_owner");
  json demote = h_.SetRole(team_, "alice", "admin", "alice");
  EXPECT_EQ(Status(demote), 403);
  EXPECT_EQ(demote["body"]["error"]["details"]["reason"], "last_owner");
  // With a second owner, either may go.
  ASSERT_EQ(Status(h_.SetRole(team_, "adam", "owner", "alice")), 200);
  EXPECT_EQ(Status(h_.SetRole(team_, "alice", "admin", "alice")), 200);
  json last = h_.Remove(team_, "adam", "adam");
  EXPECT_EQ(Status(last), 403);                                // adam is now the only owner
  EXPECT_EQ(Status(h_.Remove(team_, "alice", "alice")), 200);  // an admin may leave
}

TEST_F(TeamsMembership, AMemberMayLeave) {
  json r = h_.Remove(team_, "mia", "mia");
  ASSERT_EQ(Status(r), 200) << r.dump();
  EXPECT_FALSE(h_.Graph("org-a").RoleIn("org-a", team_, "mia"));
  EXPECT_FALSE(h_.Allowed(team_, "mia", "team.read"));
  auto events = h_.Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "member.removed");
}

TEST_F(TeamsMembership, RemovingOrUpdatingANonMemberIs404) {
  EXPECT_EQ(Status(h_.Remove(team_, "ghost", "alice")), 404);
  EXPECT_EQ(Status(h_.SetRole(team_, "ghost", "admin", "alice")), 404);
}

TEST_F(TeamsMembership, RoleChangesChangePermissionsAndEmitOnce) {
  EXPECT_FALSE(h_.Allowed(team_, "mia", "members.manage"));
  json r = h_.SetRole(team_, "mia", "admin", "adam");
  ASSERT_EQ(Status(r), 200) << r.dump();
  EXPECT_TRUE(h_.Allowed(team_, "mia", "members.manage"));
  EXPECT_FALSE(h_.Allowed(team_, "mia", "team.delete"));
  // The same role again changes nothing and emits nothing more.
  EXPECT_EQ(Status(h_.SetRole(team_, "mia", "admin", "adam")), 200);
  auto events = h_.Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "member.role_changed");
  EXPECT_EQ(events[0]["data"]["previousRole"], "member");
}

TEST_F(TeamsMembership, AnOwnerAboveManagesMembersBelow) {
  const std::string sub =
      h_.Create("org-a", "Sub", "adam", team_);  // adam: admin above, owner here
  h_.Add(sub, "sam", "member", "adam");
  // alice owns the parent, so she is owner in the subteam by inheritance.
  EXPECT_EQ(Status(h_.SetRole(sub, "sam", "owner", "alice")), 200);
  EXPECT_EQ(Status(h_.Remove(sub, "adam", "alice")), 200);
}

}  // namespace
}  // namespace cm::teams::testing
