// createTeam, getTeam, updateTeam, deleteTeam and the command plumbing of the teams processor
// on the topology test driver.
#include "teams_test_support.h"

namespace cm::teams::testing {
namespace {

TEST(TeamsTeam, CreateMakesTheCreatorOwnerAndEmitsCloudEvents) {
  TeamsHarness h;
  json r = h.Send("org-a", kCreateTeam, "alice",
                  {{"name", "Platform"},
                   {"visibility", "public"},
                   {"description", "infra"},
                   {"settings", {{"slack", "#platform"}}}});
  ASSERT_EQ(Status(r), 201) << r.dump();
  const json& team = r["body"];
  const std::string id = team["id"];
  EXPECT_EQ(*OrganizationOfTeamId(id), "org-a");
  EXPECT_EQ(id.rfind("org-a~t", 0), 0u);
  for (const char* field : {"id", "organizationId", "name", "description", "parentTeamId",
                            "visibility", "settings", "createdAt", "updatedAt", "createdBy"})
    EXPECT_TRUE(team.contains(field)) << field;
  EXPECT_EQ(team["createdBy"], "alice");
  EXPECT_TRUE(team["parentTeamId"].is_null());
  EXPECT_EQ(h.Graph("org-a").RoleIn("org-a", id, "alice"), Role::kOwner);

  auto events = h.Events();
  ASSERT_EQ(TeamsHarness::Types(events),
            (std::vector<std::string>{"team.created", "member.added"}));
  EXPECT_EQ(events[0]["specversion"], "1.0");
  EXPECT_EQ(events[0]["subject"], id);
  EXPECT_EQ(events[0]["actorUserId"], "alice");
  EXPECT_EQ(events[0]["organizationId"], "org-a");
  EXPECT_NE(events[0]["id"], events[1]["id"]);
  EXPECT_EQ(events[1]["data"]["role"], "owner");
}

TEST(TeamsTeam, NameMustBeOneToHundredCharacters) {
  TeamsHarness h;
  for (const json& bad : {json(""), json(std::string(101, 'x')), json(7), json("   ")}) {
    json r = h.Send("org-a", kCreateTeam, "alice", {{"name", bad}});
    EXPECT_EQ(Status(r), 400) << bad;
    EXPECT_EQ(r["body"]["error"]["details"]["field"], "name");
  }
  EXPECT_EQ(Status(h.Send("org-a", kCreateTeam, "alice", {{"name", std::string(100, 'x')}})), 201);
  // 100 characters of two bytes each: characters, not bytes, are counted.
  std::string accented;
  for (int i = 0; i < 100; ++i) accented += "\xC3\xA9";
  EXPECT_EQ(Status(h.Send("org-a", kCreateTeam, "alice", {{"name", accented}})), 201);
  EXPECT_TRUE(h.Events().size() == 4);
}

TEST(TeamsTeam, NamesAreUniquePerOrganizationCaseInsensitively) {
  TeamsHarness h;
  h.Create("org-a", "Design", "alice");
  json dup = h.Send("org-a", kCreateTeam, "bob", {{"name", "DESIGN"}});
  EXPECT_EQ(Status(dup), 409);
  EXPECT_EQ(dup["body"]["error"]["details"]["field"], "name");
  // Another organization may use the name.
  EXPECT_EQ(Status(h.Send("org-b", kCreateTeam, "bob", {{"name", "design"}})), 201);
}

TEST(TeamsTeam, VisibilityMustBePublicPrivateOrSecret) {
  TeamsHarness h;
  json r = h.Send("org-a", kCreateTeam, "alice", {{"name", "X"}, {"visibility", "hidden"}});
  EXPECT_EQ(Status(r), 400);
  EXPECT_EQ(r["body"]["error"]["details"]["field"], "visibility");
  for (const char* v : {"public", "private", "secret"})
    EXPECT_EQ(Status(h.Send("org-a", kCreateTeam, "alice",
                            {{"name", std::string("T-") + v}, {"visibility", v}})),
              201);
}

TEST(TeamsTeam, AnActorIsRequiredOnEveryCommand) {
  TeamsHarness h;
  json r = h.Send("org-a", kCreateTeam, "", {{"name", "X"}});
  EXPECT_EQ(Status(r), 400);
  EXPECT_EQ(r["body"]["error"]["details"]["field"], "actorUserId");
}

TEST(TeamsTeam, ARetriedCommandIsAppliedOnce) {
  TeamsHarness h;
  json first = h.Send("org-a", kCreateTeam, "alice", {{"name", "Once"}}, "same-id");
  json again = h.Send("org-a", kCreateTeam, "alice", {{"name", "Once"}}, "same-id");
  EXPECT_EQ(first, again);
  EXPECT_EQ(h.Events().size(), 2u);  // team.created and member.added, once
  EXPECT_EQ(h.Graph("org-a").TeamsOf("org-a").size(), 1u);
}

TEST(TeamsTeam, OtherApplicationsCommandsAndUsageEventsAreIgnored) {
  TeamsHarness h;
  h.driver().PipeInput(kCommands, "org-a",
                       json{{"type", "usage.set_plan"},
                            {"commandId", "u1"},
                            {"organizationId", "org-a"},
                            {"plan", "pro"}}
                           .dump(),
                       h.now());
  h.driver().PipeInput(kCommands, "org-a", "not json", h.now());
  EXPECT_FALSE(topology::CommandResults::Read(*h.Views("org-a").command_results, "u1"));
  EXPECT_TRUE(h.driver().ReadOutput(kDlq).empty());  // usage's to report, not ours
  // A teams command without an id has nowhere for its result: DLQ.
  h.driver().PipeInput(kCommands, "org-a", json{{"type", "teams.create_team"}}.dump(), h.now());
  EXPECT_EQ(h.driver().ReadOutput(kDlq).size(), 1u);
}

TEST(TeamsTeam, GetTeamIncludesMembersAndSubteamsOnRequest) {
  TeamsHarness h;
  const std::string root = h.Create("org-a", "Root", "alice");
  const std::string child = h.Create("org-a", "Child", "alice", root);
  h.Add(root, "bob", "member", "alice");
  auto plain = h.Queries("org-a").GetTeam(root, false, false);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->contains("members"));
  EXPECT_FALSE(plain->contains("subteams"));
  auto full = h.Queries("org-a").GetTeam(root, true, true);
  ASSERT_TRUE(full.ok());
  EXPECT_EQ((*full)["members"].size(), 2u);
  ASSERT_EQ((*full)["subteams"].size(), 1u);
  EXPECT_EQ((*full)["subteams"][0]["id"], child);
  for (const auto& m : (*full)["members"])
    for (const char* f : {"teamId", "userId", "role", "joinedAt", "addedBy"})
      EXPECT_TRUE(m.contains(f)) << f;
  EXPECT_EQ(h.Queries("org-a").GetTeam("org-a~t0000000000000000", false, false).status().code(),
            state::Status::Code::kNotFound);
}

TEST(TeamsTeam, UpdateMergesSettingsAndRenames) {
  TeamsHarness h;
  const std::string id = h.Create("org-a", "Ops", "alice");
  h.Events();
  ASSERT_EQ(Status(h.Send("org-a", kUpdateTeam, "alice",
                          {{"teamId", id}, {"settings", {{"a", 1}, {"b", 2}}}})),
            200);
  json r = h.Send("org-a", kUpdateTeam, "alice",
                  {{"teamId", id}, {"name", "SRE"}, {"settings", {{"b", 3}, {"c", 4}}}});
  ASSERT_EQ(Status(r), 200) << r.dump();
  EXPECT_EQ(r["body"]["settings"], (json{{"a", 1}, {"b", 3}, {"c", 4}}));
  EXPECT_EQ(r["body"]["name"], "SRE");
  // The old name is free again, the new one taken.
  EXPECT_EQ(Status(h.Send("org-a", kCreateTeam, "bob", {{"name", "ops"}})), 201);
  EXPECT_EQ(Status(h.Send("org-a", kCreateTeam, "bob", {{"name", "sre"}})), 409);
  auto events = h.Events();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[1]["type"], "team.updated");
  EXPECT_EQ(events[1]["data"]["changes"]["name"], "SRE");
}

TEST(TeamsTeam, UpdateNeedsTeamUpdate) {
  TeamsHarness h;
  const std::string id = h.Create("org-a", "Ops", "alice");
  h.Add(id, "bob", "member", "alice");
  json r = h.Send("org-a", kUpdateTeam, "bob", {{"teamId", id}, {"name", "Mine"}});
  EXPECT_EQ(Status(r), 403);
  EXPECT_EQ(r["body"]["error"]["details"]["permission"], "team.update");
  EXPECT_EQ(Status(h.Send("org-a", kUpdateTeam, "mallory", {{"teamId", id}, {"name", "M"}})), 403);
  h.SetRole(id, "bob", "admin", "alice");
  EXPECT_EQ(Status(h.Send("org-a", kUpdateTeam, "bob", {{"teamId", id}, {"name", "Mine"}})), 200);
}

TEST(TeamsTeam, UnknownTeamIs404AndAnotherOrganizationsTeamIs422) {
  TeamsHarness h;
  const std::string other = h.Create("org-b", "B", "bob");
  json unknown =
      h.Send("org-a", kUpdateTeam, "alice", {{"teamId", "org-a~t0123456789abcdef"}, {"name", "x"}});
  EXPECT_EQ(Status(unknown), 404);
  json bad = h.Send("org-a", kUpdateTeam, "alice", {{"teamId", "not-a-team"}, {"name", "x"}});
  EXPECT_EQ(Status(bad), 400);
  EXPECT_EQ(bad["body"]["error"]["details"]["field"], "teamId");
  json cross = h.Send("org-a", kCreateTeam, "bob", {{"name", "x"}, {"parentTeamId", other}});
  EXPECT_EQ(Status(cross), 422);
  EXPECT_EQ(Code(cross), "cross_organization");
}

TEST(TeamsTeam, DeleteNeedsOwnerAndMovesSubteamsUp) {
  TeamsHarness h;
  const std::string root = h.Create("org-a", "Root", "alice");
  const std::string mid = h.Create("org-a", "Mid", "alice", root);
  const std::string leaf1 = h.Create("org-a", "Leaf1", "alice", mid);
  const std::string leaf2 = h.Create("org-a", "Leaf2", "alice", mid);
  h.Add(mid, "bob", "admin", "alice");
  h.Add(mid, "carol", "member", "alice");
  EXPECT_EQ(Status(h.Delete(mid, "bob")), 403);  // admin is not enough
  EXPECT_TRUE(h.Allowed(leaf1, "carol", "documents.read"));
  h.Events();

  json r = h.Delete(mid, "alice");
  ASSERT_EQ(Status(r), 200) << r.dump();
  EXPECT_EQ(r["body"]["deleted"], true);
  EXPECT_EQ(r["body"]["membersReassigned"], 0);
  EXPECT_EQ(r["body"]["movedSubteams"].size(), 2u);
  TeamGraph g = h.Graph("org-a");
  EXPECT_FALSE(g.Team("org-a", mid));
  EXPECT_EQ(g.Team("org-a", leaf1)->value("parentTeamId", ""), root);
  EXPECT_EQ(g.Team("org-a", leaf2)->value("parentTeamId", ""), root);
  // mid's members no longer reach its former subteams; the root's owner still does.
  EXPECT_FALSE(h.Allowed(leaf1, "carol", "documents.read"));
  EXPECT_TRUE(h.Allowed(leaf1, "alice", "team.delete"));
  EXPECT_TRUE(g.Members("org-a", mid).empty());
  EXPECT_TRUE(g.MaterializedGrantsOf("org-a", mid).empty());
  // Its name is free again.
  EXPECT_EQ(Status(h.Send("org-a", kCreateTeam, "alice", {{"name", "mid"}})), 201);
  auto types = TeamsHarness::Types(h.Events());
  EXPECT_EQ(std::count(types.begin(), types.end(), "team.deleted"), 1);
  EXPECT_EQ(std::count(types.begin(), types.end(), "team.moved"), 2);
}

TEST(TeamsTeam, DeleteWithDeleteSubteamsRemovesTheSubtree) {
  TeamsHarness h;
  const std::string root = h.Create("org-a", "Root", "alice");
  const std::string a = h.Create("org-a", "A", "alice", root);
  const std::string b = h.Create("org-a", "B", "alice", a);
  const std::string keep = h.Create("org-a", "Keep", "alice");
  h.Add(b, "dave", "member", "alice");
  json r = h.Delete(a, "alice", {{"deleteSubteams", true}});
  ASSERT_EQ(Status(r), 200) << r.dump();
  EXPECT_EQ(r["body"]["deletedTeams"].size(), 2u);
  TeamGraph g = h.Graph("org-a");
  EXPECT_FALSE(g.Team("org-a", a));
  EXPECT_FALSE(g.Team("org-a", b));
  EXPECT_TRUE(g.Team("org-a", root));
  EXPECT_TRUE(g.Team("org-a", keep));
  EXPECT_TRUE(g.Children("org-a", root).empty());
  EXPECT_TRUE(g.MaterializedGrantsOf("org-a", b).empty());
}

TEST(TeamsTeam, DeleteReassignsMembersKeepingTheirHighestRole) {
  TeamsHarness h;
  const std::string doomed = h.Create("org-a", "Doomed", "alice");
  const std::string sub = h.Create("org-a", "Sub", "alice", doomed);
  const std::string target = h.Create("org-a", "Target", "alice");
  h.Add(doomed, "bob", "admin", "alice");
  h.Add(sub, "bob", "owner", "alice");
  h.Add(doomed, "carol", "member", "alice");
  h.Add(target, "carol", "admin", "alice");  // already higher there: keeps admin
  h.Add(doomed, "erin", "admin", "alice");
  json r = h.Delete(doomed, "alice", {{"reassignTo", target}, {"deleteSubteams", true}});
  ASSERT_EQ(Status(r), 200) << r.dump();
  EXPECT_EQ(r["body"]["membersReassigned"], 4);  // alice, bob, carol, erin
  TeamGraph g = h.Graph("org-a");
  EXPECT_EQ(g.RoleIn("org-a", target, "bob"), Role::kOwner);
  EXPECT_EQ(g.RoleIn("org-a", target, "carol"), Role::kAdmin);
  EXPECT_EQ(g.RoleIn("org-a", target, "erin"), Role::kAdmin);
  EXPECT_TRUE(h.Allowed(target, "bob", "team.delete"));
}

TEST(TeamsTeam, DeleteRefusesReassigningToATeamBeingDeletedAndChangesNothing) {
  TeamsHarness h;
  const std::string a = h.Create("org-a", "A", "alice");
  const std::string b = h.Create("org-a", "B", "alice", a);
  h.Add(a, "bob", "member", "alice");
  const auto before = h.Dump("org-a");
  json r = h.Delete(a, "alice", {{"reassignTo", b}, {"deleteSubteams", true}});
  EXPECT_EQ(Status(r), 422);
  EXPECT_EQ(r["body"]["error"]["details"]["field"], "reassignTo");
  EXPECT_EQ(h.Dump("org-a"), before);
  h.Events();
  // Without deleteSubteams the subteam survives and may take the members.
  json ok = h.Delete(a, "alice", {{"reassignTo", b}});
  ASSERT_EQ(Status(ok), 200) << ok.dump();
  EXPECT_EQ(h.Graph("org-a").RoleIn("org-a", b, "bob"), Role::kMember);
  EXPECT_TRUE(h.Graph("org-a").Team("org-a", b)->value("parentTeamId", json()).is_null());
}

TEST(TeamsTeam, RefusedCommandsChangeNoStoreAndEmitNothing) {
  TeamsHarness h;
  const std::string a = h.Create("org-a", "A", "alice");
  h.Add(a, "bob", "member", "alice");
  h.Events();
  const auto before = h.Dump("org-a");
  EXPECT_EQ(Status(h.Add(a, "bob", "admin", "alice")), 409);
  EXPECT_EQ(Status(h.Add(a, "zed", "member", "bob")), 403);
  EXPECT_EQ(Status(h.Move(a, a, "alice")), 422);
  EXPECT_EQ(Status(h.Remove(a, "alice", "alice")), 403);
  EXPECT_EQ(Status(h.Delete(a, "bob")), 403);
  EXPECT_EQ(h.Dump("org-a"), before);
  EXPECT_TRUE(h.Events().empty());
}

TEST(TeamsTeam, StateSurvivesARestart) {
  TeamsHarness h;
  const std::string a = h.Create("org-a", "A", "alice");
  const std::string b = h.Create("org-a", "B", "alice", a);
  h.driver().Commit();
  ASSERT_TRUE(h.driver().Restart().ok());
  EXPECT_TRUE(h.Allowed(b, "alice", "team.delete"));
  EXPECT_EQ(Status(h.Send("org-a", kCreateTeam, "x", {{"name", "a"}})), 409);
}

// A fixed limit for every organization: how teams sees any TeamLimits.
class FixedTeamLimits final : public TeamLimits {
 public:
  explicit FixedTeamLimits(int64_t max) : max_(max) {}
  std::vector<std::string> stores() const override { return {}; }
  std::optional<TeamLimit> For(topology::ProcessorContext&, const std::string& org,
                               int64_t) const override {
    if (org == "org-unlimited") return std::nullopt;
    return TeamLimit{max_, "test limit"};
  }

 private:
  int64_t max_;
};

TEST(TeamsTeam, AnOrganizationAtItsTeamLimitGets429UntilATeamIsDeleted) {
  TeamsOptions o;
  o.team_limits = std::make_shared<const FixedTeamLimits>(2);
  TeamsHarness h(o);
  const std::string a = h.Create("org-a", "A", "alice");
  h.Create("org-a", "B", "alice", a);
  json third = h.Send("org-a", kCreateTeam, "alice", {{"name", "C"}});
  EXPECT_EQ(Status(third), 429) << third.dump();
  EXPECT_EQ(Code(third), "quota_exceeded");
  EXPECT_EQ(third["body"]["error"]["details"]["maxTeams"], 2);
  EXPECT_NE(third["body"]["error"]["message"].get<std::string>().find("test limit"),
            std::string::npos);
  EXPECT_EQ(h.Graph("org-a").TeamsOf("org-a").size(), 2u);
  // Other organizations count their own teams; an organization without a limit has none.
  h.Create("org-b", "A", "bob");
  for (int i = 0; i < 3; ++i) h.Create("org-unlimited", "T" + std::to_string(i), "carol");
  // Deleting one frees a place.
  ASSERT_EQ(Status(h.Delete(a, "alice", {{"deleteSubteams", false}})), 200);
  EXPECT_EQ(Status(h.Send("org-a", kCreateTeam, "alice", {{"name", "C"}})), 201);
}

TEST(TeamsTeam, ARetryIsAnsweredFromTheResultUntilTheRetentionEnds) {
  TeamsOptions o;
  o.command_result_retention_ms = 3600 * 1000;
  TeamsHarness h(o);
  json first = h.Send("org-a", kCreateTeam, "alice", {{"name", "Core"}}, "create-core");
  ASSERT_EQ(first["status"], 201) << first.dump();
  // Within the retention the retry is answered with the first result, not applied again.
  json retry = h.Send("org-a", kCreateTeam, "alice", {{"name", "Core"}}, "create-core");
  EXPECT_EQ(retry, first);
  h.driver().AdvanceWallClock(2 * 3600 * 1000);
  EXPECT_FALSE(topology::CommandResults::Read(*h.Views("org-a").command_results, "create-core"));
  // Afterwards the same id is a new command; the team it would make exists, so nothing doubles.
  json late = h.Send("org-a", kCreateTeam, "alice", {{"name", "Core"}}, "create-core");
  EXPECT_EQ(late["status"], 409) << late.dump();
  EXPECT_EQ(h.Queries("org-a")
                .GetTeam(first["body"]["id"].get<std::string>(), false, false)
                ->value("name", ""),
            "Core");
}

}  // namespace
}  // namespace cm::teams::testing
