#pragma once

// The teams topology alone on the topology test driver, with helpers to send commands as the
// HTTP layer would and to read results, stores and events.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "processors/teams/team_graph.h"
#include "processors/teams/team_id.h"
#include "processors/teams/teams_commands.h"
#include "processors/teams/teams_options.h"
#include "processors/teams/teams_queries.h"
#include "processors/teams/teams_stores.h"
#include "processors/teams/teams_topology.h"
#include "processors/teams/user_teams_processor.h"
#include "topology/processor/topology.h"
#include "topology/testing/topology_test_driver.h"

namespace cm::teams::testing {

using nlohmann::json;

inline constexpr char kCommands[] = "cloudmatrix.commands";
inline constexpr char kTeamEvents[] = "cloudmatrix.team-events";
inline constexpr char kDlq[] = "cloudmatrix.dlq";

inline TeamsOptions StandaloneOptions(TeamsOptions o = {}) {
  o.own_source = true;
  return o;
}

class TeamsHarness {
 public:
  explicit TeamsHarness(TeamsOptions options = {}, int32_t partitions = 3)
      : options_(StandaloneOptions(std::move(options))) {
    topology::TopologyBuilder b;
    auto s = AddTeamsTopology(b, options_);
    if (!s.ok()) throw std::runtime_error(s.ToString());
    auto built = b.Build("teams-test");
    if (!built.ok()) throw std::runtime_error(built.status().ToString());
    topology_ = std::make_unique<topology::Topology>(std::move(built).value());
    topology::TestDriverOptions o;
    o.partitions = partitions;
    o.wall_clock_start_ms = 1'800'000'000'000;
    auto d = topology::TopologyTestDriver::Create(*topology_, o);
    if (!d.ok()) throw std::runtime_error(d.status().ToString());
    driver_ = std::move(d).value();
  }

  topology::TopologyTestDriver& driver() { return *driver_; }
  const TeamsOptions& options() const { return options_; }
  int64_t now() const { return now_; }
  void Advance(int64_t ms) { now_ += ms; }

  // Sends a command and returns its stored result {status, body, ...}.
  json Send(const std::string& org, const std::string& type, const std::string& actor, json fields,
            std::string command_id = "") {
    if (command_id.empty()) command_id = "cmd-" + std::to_string(++next_command_);
    fields["type"] = type;
    fields["commandId"] = command_id;
    fields["organizationId"] = org;
    if (!actor.empty()) fields["actorUserId"] = actor;
    now_ += 1000;
    driver_->PipeInput(kCommands, org, fields.dump(), now_);
    auto r = topology::CommandResults::Read(*Views(org).command_results, command_id);
    return r ? *r : json();
  }

  // Creates a team and returns its id (fails the test when refused).
  std::string Create(const std::string& org, const std::string& name, const std::string& actor,
                     const std::string& parent = "", const std::string& visibility = "private") {
    json f = {{"name", name}, {"visibility", visibility}};
    if (!parent.empty()) f["parentTeamId"] = parent;
    json r = Send(org, kCreateTeam, actor, f);
    EXPECT_EQ(r.value("status", 0), 201) << r.dump();
    return r["body"].value("id", "");
  }
  json Add(const std::string& team, const std::string& user, const std::string& role,
           const std::string& actor) {
    return Send(Org(team), kAddMember, actor, {{"teamId", team}, {"userId", user}, {"role", role}});
  }
  json SetRole(const std::string& team, const std::string& user, const std::string& role,
               const std::string& actor) {
    return Send(Org(team), kUpdateMemberRole, actor,
                {{"teamId", team}, {"userId", user}, {"role", role}});
  }
  json Remove(const std::string& team, const std::string& user, const std::string& actor) {
    return Send(Org(team), kRemoveMember, actor, {{"teamId", team}, {"userId", user}});
  }
  json Move(const std::string& team, const std::string& parent, const std::string& actor) {
    return Send(Org(team), kMoveTeam, actor,
                {{"teamId", team}, {"newParentId", parent.empty() ? json() : json(parent)}});
  }
  json Delete(const std::string& team, const std::string& actor, json extra = json::object()) {
    extra["teamId"] = team;
    return Send(Org(team), kDeleteTeam, actor, extra);
  }

  static std::string Org(const std::string& team) { return *OrganizationOfTeamId(team); }

  TeamsStoreViews Views(const std::string& org) {
    return TeamsStoreViews::Live(driver_->TaskFor(kCommands, org).state());
  }
  TeamsQueries Queries(const std::string& org) { return TeamsQueries(Views(org)); }

  // The user index's store on the task of `user`'s partition of the repartition topic.
  state::KeyValueStore& UserIndex(const std::string& user) {
    const std::string topic =
        topology::Topology::RepartitionTopic(topology_->application_id(), kUserTeamsRepartition);
    return *driver_->TaskFor(topic, user).state().key_value_store(kUserTeamsStore);
  }
  // getUserTeams as the route answers it for an admin key (every organization visible).
  json UserTeams(const std::string& user, const std::string& cursor = "", size_t limit = 500) {
    auto r = GetUserTeams(UserIndex(user), {user, cursor, limit}, [](const json&) { return true; });
    if (!r.ok()) throw std::runtime_error(r.status().ToString());
    return *r;
  }
  // The user's direct memberships read from the organizations' stores: what the index must be,
  // as "org/team/role/teamName" lines.
  std::set<std::string> MembershipsOf(const std::string& user,
                                      const std::vector<std::string>& orgs) {
    std::set<std::string> out;
    for (const auto& org : orgs) {
      TeamGraph g = Graph(org);
      for (const auto& t : g.TeamsOf(org)) {
        auto role = g.RoleIn(org, t, user);
        if (role)
          out.insert(org + "/" + t + "/" + RoleName(*role) + "/" +
                     g.Team(org, t)->value("name", ""));
      }
    }
    return out;
  }
  std::set<std::string> IndexedTeamsOf(const std::string& user) {
    std::set<std::string> out;
    const json page = UserTeams(user);
    for (const auto& e : page["teams"])
      out.insert(e.value("organizationId", "") + "/" + e.value("teamId", "") + "/" +
                 e.value("role", "") + "/" + e.value("teamName", ""));
    return out;
  }
  TeamGraph Graph(const std::string& org) { return TeamGraph(Views(org)); }

  json Check(const std::string& team, const std::string& user, const std::string& permission) {
    auto r = Queries(Org(team)).CheckPermission(team, user, permission);
    if (!r.ok()) throw std::runtime_error(r.status().ToString());
    return *r;
  }
  bool Allowed(const std::string& team, const std::string& user, const std::string& permission) {
    return Check(team, user, permission).value("allowed", false);
  }

  std::vector<json> Events() {
    std::vector<json> out;
    for (const auto& r : driver_->ReadOutput(kTeamEvents)) out.push_back(json::parse(r.value));
    return out;
  }
  static std::vector<std::string> Types(const std::vector<json>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.value("type", ""));
    return out;
  }

  // Every entry of the org's task's stores except command results: what a refused command
  // must leave unchanged.
  std::map<std::string, std::string> Dump(const std::string& org) {
    std::map<std::string, std::string> out;
    TeamsStoreViews v = Views(org);
    for (auto* store : {v.teams, v.members, v.permissions, v.invitations}) {
      store->Range("", "", [&](std::string_view k, std::string_view val) {
        out.emplace(store->name() + ":" + std::string(k), std::string(val));
        return true;
      });
    }
    return out;
  }

 private:
  TeamsOptions options_;
  std::unique_ptr<topology::Topology> topology_;
  std::unique_ptr<topology::TopologyTestDriver> driver_;
  int64_t now_ = 1'800'000'000'000;
  int next_command_ = 0;
};

inline int Status(const json& result) { return result.value("status", 0); }
inline std::string Code(const json& result) { return result["body"]["error"].value("code", ""); }

}  // namespace cm::teams::testing
