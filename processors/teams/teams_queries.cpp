#include "processors/teams/teams_queries.h"

#include <algorithm>
#include <functional>

#include "processors/teams/team_id.h"
#include "processors/teams/teams_processor.h"

namespace cm::teams {

using nlohmann::json;
using state::Result;
using state::Status;

namespace {

Status NoSuchTeam() { return Status::NotFound("no such team"); }

}  // namespace

bool TeamsQueries::Visible(const std::string& id, const std::string& user) const {
  auto org = OrganizationOfTeamId(id);
  if (!org) return true;
  auto team = graph_.Team(*org, id);
  if (!team || team->value("visibility", "") != "secret") return true;
  return !user.empty() && graph_.RoleIn(*org, id, user).has_value();
}

Result<json> TeamsQueries::GetTeam(const std::string& id, bool include_members,
                                   bool include_subteams) const {
  auto org = OrganizationOfTeamId(id);
  if (!org) return NoSuchTeam();
  auto team = graph_.Team(*org, id);
  if (!team) return NoSuchTeam();
  if (include_members) {
    json members = json::array();
    for (auto& m : graph_.Memberships(*org, id)) members.push_back(std::move(m));
    (*team)["members"] = std::move(members);
  }
  if (include_subteams) {
    json subteams = json::array();
    for (const auto& c : graph_.Children(*org, id)) {
      if (auto t = graph_.Team(*org, c)) subteams.push_back(std::move(*t));
    }
    (*team)["subteams"] = std::move(subteams);
  }
  return *team;
}

Result<json> TeamsQueries::GetHierarchy(const std::string& id, const std::string& direction) const {
  if (direction != "ancestors" && direction != "descendants" && direction != "both")
    return Status::InvalidArgument("direction must be ancestors, descendants or both");
  auto org = OrganizationOfTeamId(id);
  if (!org) return NoSuchTeam();
  auto team = graph_.Team(*org, id);
  if (!team) return NoSuchTeam();
  const auto ancestors = graph_.Ancestors(*org, id);
  json out = {{"team", *team}, {"depth", ancestors.size()}};
  json up = json::array();
  if (direction != "descendants") {
    for (const auto& a : ancestors)
      if (auto t = graph_.Team(*org, a)) up.push_back(std::move(*t));
  }
  out["ancestors"] = std::move(up);
  std::function<json(const std::string&, int)> nodes = [&](const std::string& parent, int depth) {
    json list = json::array();
    for (const auto& c : graph_.Children(*org, parent)) {
      auto t = graph_.Team(*org, c);
      if (!t) continue;
      list.push_back(
          {{"team", std::move(*t)}, {"children", nodes(c, depth + 1)}, {"depth", depth}});
    }
    return list;
  };
  out["descendants"] = direction != "ancestors" ? nodes(id, 1) : json::array();
  return out;
}

Result<Grants> TeamsQueries::GrantsIn(const std::string& id, const std::string& user) const {
  auto org = OrganizationOfTeamId(id);
  if (!org) return NoSuchTeam();
  Grants grants = graph_.MaterializedGrants(*org, id, user);
  // Grants exist only for teams that exist (deletes remove them), so the team is looked up
  // only when there are none: a check that finds a grant is one point lookup.
  if (grants.empty() && !graph_.HasTeam(*org, id)) return NoSuchTeam();
  return grants;
}

Result<json> TeamsQueries::GetEffectivePermissions(const std::string& id,
                                                   const std::string& user) const {
  auto grants_or = GrantsIn(id, user);
  if (!grants_or.ok()) return grants_or.status();
  Grants grants = std::move(grants_or).value();
  std::stable_sort(grants.begin(), grants.end(), [&](const Grant& a, const Grant& b) {
    return (a.team_id == id) > (b.team_id == id);  // the direct grant first
  });
  auto best = DecidingGrant(grants, id);
  json sources = json::object();
  json permissions = json::array();
  for (const auto& p : AllPermissions()) {
    json from = json::array();
    for (const auto& g : grants) {
      if (!RoleHas(g.role, p)) continue;
      from.push_back({{"teamId", g.team_id},
                      {"role", RoleName(g.role)},
                      {"inherited", g.team_id != id},
                      {"source", g.team_id == id ? "direct" : "inherited"}});
    }
    if (from.empty()) continue;
    permissions.push_back(p);
    sources[p] = std::move(from);
  }
  return json{{"teamId", id},
              {"userId", user},
              {"role", best ? json(RoleName(best->role)) : json()},
              {"permissions", std::move(permissions)},
              {"sources", std::move(sources)}};
}

Result<json> TeamsQueries::CheckPermission(const std::string& id, const std::string& user,
                                           const std::string& permission) const {
  if (!LeastRoleWith(permission))
    return Status::InvalidArgument("unknown permission '" + permission + "'");
  auto grants = GrantsIn(id, user);
  if (!grants.ok()) return grants.status();
  PermissionCheck check = teams::CheckPermission(*grants, id, user, permission);
  json out = {{"allowed", check.allowed},
              {"reason", check.reason},
              {"teamId", id},
              {"userId", user},
              {"permission", permission}};
  if (check.grant) {
    out["grantedBy"] = {{"teamId", check.grant->team_id},
                        {"role", RoleName(check.grant->role)},
                        {"inherited", check.grant->team_id != id}};
  }
  return out;
}

}  // namespace cm::teams
