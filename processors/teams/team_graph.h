#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "processors/teams/roles.h"
#include "processors/teams/teams_stores.h"

namespace cm::teams {

// One team where a user holds a role, as seen from a team at or below it.
struct Grant {
  std::string team_id;
  Role role = Role::kMember;
  bool operator==(const Grant&) const = default;
};
using Grants = std::vector<Grant>;  // sorted by team_id

std::string EncodeGrants(const Grants& grants);
Grants DecodeGrants(std::string_view value);
// The grant that decides: the highest role; among equals the direct one (team == `team_id`),
// then the smallest team id. nullopt for no grants.
std::optional<Grant> DecidingGrant(const Grants& grants, std::string_view team_id);

// Reads the team tree, memberships and materialized grants of one task's stores. Works over
// live stores (the processor, tests) and committed views (queries) alike.
class TeamGraph {
 public:
  explicit TeamGraph(const TeamsStoreViews& views) : views_(views) {}

  // Whether the team exists, without decoding it (a permission check needs no more).
  bool HasTeam(const std::string& org, const std::string& team) const;
  std::optional<nlohmann::json> Team(const std::string& org, const std::string& team) const;
  std::optional<std::string> TeamIdByName(const std::string& org, const std::string& name) const;
  // Every team of the organization, by id.
  std::vector<std::string> TeamsOf(const std::string& org) const;
  std::vector<std::string> Children(const std::string& org, const std::string& parent) const;
  // The parent chain: parent first, root last.
  std::vector<std::string> Ancestors(const std::string& org, const std::string& team) const;
  // The team and all below it, parents before children.
  std::vector<std::string> Subtree(const std::string& org, const std::string& team) const;
  // Levels of the subtree rooted at `team` (1 for a leaf).
  int Height(const std::string& org, const std::string& team) const;

  std::map<std::string, Role> Members(const std::string& org, const std::string& team) const;
  std::vector<nlohmann::json> Memberships(const std::string& org, const std::string& team) const;
  std::optional<Role> RoleIn(const std::string& org, const std::string& team,
                             const std::string& user) const;

  // The materialized grants of a user in a team (one point lookup).
  Grants MaterializedGrants(const std::string& org, const std::string& team,
                            const std::string& user) const;
  // Every user's materialized grants in a team.
  std::map<std::string, Grants> MaterializedGrantsOf(const std::string& org,
                                                     const std::string& team) const;
  // The same, recomputed from memberships and parents (what the materialization must equal).
  std::map<std::string, Grants> NaiveGrantsOf(const std::string& org,
                                              const std::string& team) const;

 private:
  TeamsStoreViews views_;
};

// The parentTeamId of a team record; nullopt for a root team.
std::optional<std::string> ParentTeamOf(const nlohmann::json& team);

// ASCII case folding: team names are unique per organization case-insensitively.
std::string LowerName(std::string_view name);

}  // namespace cm::teams
