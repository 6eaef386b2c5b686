#include <algorithm>
#include <set>

#include "processors/teams/teams_commands.h"
#include "processors/teams/teams_processor.h"
#include "processors/teams/teams_stores.h"

namespace cm::teams {

using nlohmann::json;

PermissionCheck CheckPermission(const Grants& grants, const std::string& team,
                                const std::string& user, const std::string& permission) {
  PermissionCheck out;
  auto least = LeastRoleWith(permission);
  if (!least) {
    out.reason = "unknown permission '" + permission + "'";
    return out;
  }
  auto best = DecidingGrant(grants, team);
  if (!best) {
    out.reason = "user " + user + " has no role in team " + team + " or any team above it";
    return out;
  }
  out.grant = best;
  const std::string how =
      best->team_id == team ? "directly in team " + team : "inherited from team " + best->team_id;
  if (RoleHas(best->role, permission)) {
    out.allowed = true;
    out.reason = std::string("role ") + RoleName(best->role) + " " + how + " grants " + permission;
  } else {
    out.reason = std::string("role ") + RoleName(best->role) + " " + how + " does not grant " +
                 permission + " (needs " + RoleName(*least) + ")";
  }
  return out;
}

void TeamsProcessor::PutGrants(const std::string& key, Grants grants) {
  if (grants.empty()) {
    permissions_->Delete(key);
    return;
  }
  std::sort(grants.begin(), grants.end(),
            [](const Grant& a, const Grant& b) { return a.team_id < b.team_id; });
  permissions_->Put(key, EncodeGrants(grants));
}

void TeamsProcessor::SetRole(const std::string& org, const std::string& team,
                             const std::string& user, std::optional<Role> role,
                             const json& membership) {
  if (role) {
    members_->Put(keys::MemberKey(org, team, user), membership.dump());
    IndexMembership(org, team, user, membership);
  } else {
    members_->Delete(keys::MemberKey(org, team, user));
    IndexMembership(org, team, user, std::nullopt);
  }
  // The grant from `team` applies in every team of its subtree.
  for (const auto& d : graph_->Subtree(org, team)) {
    const std::string key = keys::GrantsKey(org, d, user);
    Grants grants = graph_->MaterializedGrants(org, d, user);
    std::erase_if(grants, [&](const Grant& g) { return g.team_id == team; });
    if (role) grants.push_back({team, *role});
    PutGrants(key, std::move(grants));
  }
}

void TeamsProcessor::Reparent(const std::string& org, json team,
                              const std::optional<std::string>& new_parent, int64_t now) {
  const std::string id = team.value("id", "");
  const auto old_parent = ParentTeamOf(team);
  teams_->Delete(keys::ChildKey(org, old_parent.value_or(""), id));
  teams_->Put(keys::ChildKey(org, new_parent.value_or(""), id), "");
  team["parentTeamId"] = new_parent ? json(*new_parent) : json();
  team["updatedAt"] = FormatTimestamp(now);
  teams_->Put(keys::TeamKey(org, id), team.dump());

  // Grants from inside the subtree stay; grants from the old ancestors go; the new ancestors'
  // members gain grants in every team of the subtree.
  const std::vector<std::string> subtree = graph_->Subtree(org, id);
  const std::set<std::string> inside(subtree.begin(), subtree.end());
  std::vector<std::pair<std::string, std::map<std::string, Role>>> above;
  if (new_parent) {
    std::vector<std::string> chain = {*new_parent};
    for (auto& a : graph_->Ancestors(org, *new_parent)) chain.push_back(std::move(a));
    for (const auto& a : chain) above.emplace_back(a, graph_->Members(org, a));
  }
  for (const auto& d : subtree) {
    std::map<std::string, Grants> entries = graph_->MaterializedGrantsOf(org, d);
    for (auto& [user, grants] : entries)
      std::erase_if(grants, [&](const Grant& g) { return !inside.contains(g.team_id); });
    for (const auto& [a, members] : above)
      for (const auto& [user, role] : members) entries[user].push_back({a, role});
    for (auto& [user, grants] : entries)
      PutGrants(keys::GrantsKey(org, d, user), std::move(grants));
  }
}

void TeamsProcessor::RemoveTeamRecord(const std::string& org, const std::string& team) {
  auto t = graph_->Team(org, team);
  if (!t) return;
  for (const auto& [user, role] : graph_->Members(org, team)) {
    members_->Delete(keys::MemberKey(org, team, user));
    IndexMembership(org, team, user, std::nullopt);
  }
  std::vector<std::string> grant_keys;
  permissions_->PrefixScan(keys::GrantsPrefix(org, team),
                           [&](std::string_view k, std::string_view) {
                             grant_keys.emplace_back(k);
                             return true;
                           });
  for (const auto& k : grant_keys) permissions_->Delete(k);
  teams_->Delete(keys::NameKey(org, LowerName(t->value("name", ""))));
  teams_->Delete(keys::ChildKey(org, ParentTeamOf(*t).value_or(""), team));
  teams_->Delete(keys::TeamKey(org, team));
}

}  // namespace cm::teams
