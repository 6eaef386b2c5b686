// Invitations: hashed tokens, accept once, revoke, and expiry by a wall-clock timer that also
// fires after a restart.
#include "teams_test_support.h"
#include "topology/common/crypto.h"

namespace cm::teams::testing {
namespace {

std::string Hash(const std::string& token) { return topology::HexEncode(topology::Sha256(token)); }

class TeamsInvitation : public ::testing::Test {
 protected:
  void SetUp() override {
    team_ = h_.Create("org-a", "Core", "alice");
    h_.Events();
  }
  json Invite(const std::string& token, const std::string& id, const std::string& actor = "alice",
              json extra = json::object()) {
    extra["teamId"] = team_;
    extra["email"] = "new@example.com";
    extra["invitationId"] = id;
    extra["tokenHash"] = Hash(token);
    return h_.Send("org-a", kCreateInvitation, actor, extra);
  }
  json Accept(const std::string& token, const std::string& user) {
    return h_.Send("org-a", kAcceptInvitation, user, {{"tokenHash", Hash(token)}});
  }
  TeamsHarness h_;
  std::string team_;
};

TEST_F(TeamsInvitation, CreateStoresOnlyTheHashAndExpiresInSevenDaysByDefault) {
  json r = Invite("secret-token-1", "inv_1", "alice", {{"role", "admin"}});
  ASSERT_EQ(Status(r), 201) << r.dump();
  EXPECT_EQ(r["body"]["status"], "pending");
  EXPECT_EQ(r["body"]["role"], "admin");
  EXPECT_FALSE(r["body"].contains("tokenHash"));
  EXPECT_EQ(r["body"]["expiresAtMs"].get<int64_t>() - h_.now(), 7LL * 24 * 3600 * 1000);
  // Nothing stored holds the token itself.
  bool token_seen = false;
  h_.Views("org-a").invitations->Range("", "", [&](std::string_view k, std::string_view v) {
    token_seen |= std::string(k).find("secret-token-1") != std::string::npos ||
                  std::string(v).find("secret-token-1") != std::string::npos;
    return true;
  });
  EXPECT_FALSE(token_seen);
  auto events = h_.Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "invitation.sent");
}

TEST_F(TeamsInvitation, OnlyInvitationManagersInviteAndOnlyOwnersInviteOwners) {
  h_.Add(team_, "mia", "member", "alice");
  h_.Add(team_, "adam", "admin", "alice");
  EXPECT_EQ(Status(Invite("t1", "inv_1", "mia")), 403);
  EXPECT_EQ(Status(Invite("t2", "inv_2", "adam", {{"role", "owner"}})), 403);
  EXPECT_EQ(Status(Invite("t3", "inv_3", "adam")), 201);
  json bad =
      h_.Send("org-a", kCreateInvitation, "alice",
              {{"teamId", team_}, {"email", "nope"}, {"invitationId", "i"}, {"tokenHash", "h"}});
  EXPECT_EQ(Status(bad), 400);
  EXPECT_EQ(bad["body"]["error"]["details"]["field"], "email");
}

TEST_F(TeamsInvitation, AcceptWorksOnceThenIsGone) {
  ASSERT_EQ(Status(Invite("tok", "inv_1", "alice", {{"role", "admin"}})), 201);
  json ok = Accept("tok", "nina");
  ASSERT_EQ(Status(ok), 200) << ok.dump();
  EXPECT_EQ(ok["body"]["role"], "admin");
  EXPECT_EQ(ok["body"]["addedBy"], "alice");
  EXPECT_TRUE(h_.Allowed(team_, "nina", "members.manage"));
  json again = Accept("tok", "olaf");
  EXPECT_EQ(Status(again), 410);
  EXPECT_FALSE(h_.Allowed(team_, "olaf", "team.read"));
  auto types = TeamsHarness::Types(h_.Events());
  EXPECT_EQ(types,
            (std::vector<std::string>{"invitation.sent", "member.added", "invitation.accepted"}));
}

TEST_F(TeamsInvitation, AnUnknownTokenIs404) {
  json r = Accept("never-issued", "nina");
  EXPECT_EQ(Status(r), 404);
  EXPECT_EQ(r["body"]["error"]["details"], json::object());  // says nothing about any team
}

TEST_F(TeamsInvitation, ARevokedInvitationCannotBeAccepted) {
  ASSERT_EQ(Status(Invite("tok", "inv_1")), 201);
  json revoked =
      h_.Send("org-a", kRevokeInvitation, "alice", {{"teamId", team_}, {"invitationId", "inv_1"}});
  ASSERT_EQ(Status(revoked), 200) << revoked.dump();
  EXPECT_EQ(revoked["body"]["status"], "revoked");
  EXPECT_EQ(Status(Accept("tok", "nina")), 410);
  EXPECT_EQ(Status(h_.Send("org-a", kRevokeInvitation, "alice",
                           {{"teamId", team_}, {"invitationId", "inv_1"}})),
            410);
  EXPECT_EQ(Status(h_.Send("org-a", kRevokeInvitation, "alice",
                           {{"teamId", team_}, {"invitationId", "inv_x"}})),
            404);
}

TEST_F(TeamsInvitation, ExpiryFiresOnTheWallClockOnceEvenAcrossARestart) {
  ASSERT_EQ(Status(Invite("tok", "inv_1", "alice", {{"expiresInMs", 60000}})), 201);
  ASSERT_EQ(Status(Invite("tok2", "inv_2", "alice", {{"expiresInMs", 120000}})), 201);
  h_.Events();
  h_.driver().Commit();
  ASSERT_TRUE(h_.driver().Restart().ok());
  // The wall clock passes both expiries with no record arriving.
  h_.driver().AdvanceWallClock(h_.now() - h_.driver().wall_clock_ms() + 200000);
  auto events = h_.Events();
  ASSERT_EQ(TeamsHarness::Types(events),
            (std::vector<std::string>{"invitation.expired", "invitation.expired"}));
  EXPECT_EQ(events[0]["data"]["id"], "inv_1");
  h_.driver().AdvanceWallClock(60000);
  EXPECT_TRUE(h_.Events().empty());  // once
  json r = Accept("tok", "nina");
  EXPECT_EQ(Status(r), 410);
  EXPECT_EQ(r["body"]["error"]["details"]["status"], "expired");
}

TEST_F(TeamsInvitation, AnInvitationPastItsExpiryIsGoneEvenBeforeTheTimerRuns) {
  ASSERT_EQ(Status(Invite("tok", "inv_1", "alice", {{"expiresInMs", 1000}})), 201);
  h_.Advance(5000);
  EXPECT_EQ(Status(Accept("tok", "nina")), 410);
}

}  // namespace
}  // namespace cm::teams::testing
