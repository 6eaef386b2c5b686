#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "processors/teams/team_graph.h"
#include "state/status.h"

namespace cm::teams {

// The read methods of the seeds' TeamManagementService over one task's stores (committed
// views when serving HTTP). NotFound for an unknown team.
class TeamsQueries {
 public:
  explicit TeamsQueries(const TeamsStoreViews& views) : graph_(views) {}

  // The Team, with `members` (TeamMembership[]) and `subteams` (Team[], direct children) when
  // asked.
  state::Result<nlohmann::json> GetTeam(const std::string& team, bool include_members,
                                        bool include_subteams) const;
  // TeamHierarchy {team, depth, ancestors: Team[] (parent first), descendants:
  // TeamHierarchyNode[] {team, children, depth}}; direction ancestors|descendants|both.
  state::Result<nlohmann::json> GetHierarchy(const std::string& team,
                                             const std::string& direction) const;
  // EffectivePermissions {teamId, userId, role, permissions, sources}: sources maps each
  // permission to the grants that give it ({teamId, role, inherited}), the direct one first.
  state::Result<nlohmann::json> GetEffectivePermissions(const std::string& team,
                                                        const std::string& user) const;
  // Whether `user` may see `team`: any team but a secret one, which only its members see
  // (GitHub's rule). An unknown team is "visible": its reads answer 404 anyway.
  bool Visible(const std::string& team, const std::string& user) const;
  // {allowed, reason, ...}: one point lookup in teams-permissions.
  state::Result<nlohmann::json> CheckPermission(const std::string& team, const std::string& user,
                                                const std::string& permission) const;

 private:
  // The user's materialized grants in `team`; NotFound for an unknown team.
  state::Result<Grants> GrantsIn(const std::string& team, const std::string& user) const;

  TeamGraph graph_;
};

}  // namespace cm::teams
