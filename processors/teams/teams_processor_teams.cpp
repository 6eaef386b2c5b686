#include "processors/teams/team_id.h"
#include "processors/teams/teams_commands.h"
#include "processors/teams/teams_processor.h"
#include "processors/teams/teams_stores.h"

namespace cm::teams {

using nlohmann::json;

TeamsProcessor::Outcome TeamsProcessor::CreateTeam(const Command& c) {
  const json& f = *c.fields;
  const std::string name = f["name"].get<std::string>();
  const std::string visibility = f.value("visibility", "private");
  std::optional<std::string> parent;
  if (f.contains("parentTeamId") && f["parentTeamId"].is_string())
    parent = f["parentTeamId"].get<std::string>();
  const std::string id = TeamIdFor(c.org, c.id);
  if (graph_->Team(c.org, id))
    return {409, ErrorBody("conflict", "a team with this id exists", {{"teamId", id}})};
  if (options_->team_limits) {
    if (auto limit = options_->team_limits->For(*context_, c.org, c.now)) {
      const auto teams = static_cast<int64_t>(graph_->TeamsOf(c.org).size());
      if (teams >= limit->max_teams) {
        return {429, ErrorBody("quota_exceeded",
                               "the organization has " + std::to_string(teams) +
                                   " teams, the most its " + limit->source + " allows",
                               {{"maxTeams", limit->max_teams}, {"teams", teams}})};
      }
    }
  }
  if (graph_->TeamIdByName(c.org, name)) {
    return {409, ErrorBody("conflict",
                           "the organization has a team of that name (names are unique "
                           "case-insensitively)",
                           {{"field", "name"}, {"name", name}})};
  }
  if (parent) {
    Outcome error;
    auto p = LoadTeam(c, "parentTeamId", *parent, error);
    if (!p) return error;
    if (auto e = Require(c, *parent, "subteams.create")) return {403, *e};
    if (visibility == "secret" || p->value("visibility", "") == "secret") {
      return {422,
              ErrorBody("secret_nesting", "a secret team can neither have a parent nor be a parent",
                        {{"field", "parentTeamId"}})};
    }
    const int level = static_cast<int>(graph_->Ancestors(c.org, *parent).size()) + 2;
    if (level > options_->max_depth) {
      return {422, ErrorBody("depth_exceeded",
                             "the hierarchy may have at most " +
                                 std::to_string(options_->max_depth) + " levels",
                             {{"field", "parentTeamId"}, {"maxDepth", options_->max_depth}})};
    }
  }
  const std::string now = FormatTimestamp(c.now);
  json team = {{"id", id},
               {"organizationId", c.org},
               {"name", name},
               {"description", f.value("description", json())},
               {"parentTeamId", parent ? json(*parent) : json()},
               {"visibility", visibility},
               {"settings", f.contains("settings") && f["settings"].is_object() ? f["settings"]
                                                                                : json::object()},
               {"createdAt", now},
               {"updatedAt", now},
               {"createdBy", c.actor}};
  teams_->Put(keys::TeamKey(c.org, id), team.dump());
  teams_->Put(keys::NameKey(c.org, LowerName(name)), id);
  teams_->Put(keys::ChildKey(c.org, parent.value_or(""), id), "");
  // The new team inherits every grant of its parent, then the creator owns it.
  if (parent) {
    for (const auto& [user, grants] : graph_->MaterializedGrantsOf(c.org, *parent))
      PutGrants(keys::GrantsKey(c.org, id, user), grants);
  }
  SetRole(c.org, id, c.actor, Role::kOwner,
          MembershipRecord(id, c.actor, Role::kOwner, now, c.actor));
  Emit(c, "team.created", id, team);
  Emit(c, "member.added", id, MembershipRecord(id, c.actor, Role::kOwner, now, c.actor));
  return {201, team};
}

TeamsProcessor::Outcome TeamsProcessor::UpdateTeam(const Command& c) {
  const json& f = *c.fields;
  const std::string id = f["teamId"].get<std::string>();
  Outcome error;
  auto team = LoadTeam(c, "teamId", id, error);
  if (!team) return error;
  if (auto e = Require(c, id, "team.update")) return {403, *e};
  json changes = json::object();
  const std::string old_name = team->value("name", "");
  if (f.contains("name") && f["name"] != (*team)["name"]) {
    const std::string name = f["name"].get<std::string>();
    auto holder = graph_->TeamIdByName(c.org, name);
    if (holder && *holder != id) {
      return {409, ErrorBody("conflict", "the organization has a team of that name",
                             {{"field", "name"}, {"name", name}})};
    }
    changes["name"] = name;
  }
  if (f.contains("description") && f["description"] != team->value("description", json()))
    changes["description"] = f["description"];
  if (f.contains("visibility") && f["visibility"] != (*team)["visibility"]) {
    if (f["visibility"] == "secret" &&
        (ParentTeamOf(*team) || !graph_->Children(c.org, id).empty())) {
      return {422,
              ErrorBody("secret_nesting", "a team with a parent or subteams cannot become secret",
                        {{"field", "visibility"}})};
    }
    changes["visibility"] = f["visibility"];
  }
  if (f.contains("settings") && f["settings"].is_object()) {
    json merged = team->value("settings", json::object());
    merged.merge_patch(f["settings"]);  // merged, not replaced (RFC 7386: null removes a key)
    if (merged != team->value("settings", json::object())) changes["settings"] = merged;
  }
  if (changes.empty()) return {200, *team};
  for (auto it = changes.begin(); it != changes.end(); ++it) (*team)[it.key()] = it.value();
  (*team)["updatedAt"] = FormatTimestamp(c.now);
  if (changes.contains("name")) {
    teams_->Delete(keys::NameKey(c.org, LowerName(old_name)));
    teams_->Put(keys::NameKey(c.org, LowerName(changes["name"].get<std::string>())), id);
  }
  teams_->Put(keys::TeamKey(c.org, id), team->dump());
  // The user index carries each member's team name and visibility.
  if (changes.contains("name") || changes.contains("visibility")) {
    for (const auto& m : graph_->Memberships(c.org, id))
      IndexMembership(c.org, id, m.value("userId", ""), m);
  }
  Emit(c, "team.updated", id, {{"teamId", id}, {"changes", changes}, {"team", *team}});
  return {200, *team};
}

TeamsProcessor::Outcome TeamsProcessor::DeleteTeam(const Command& c) {
  const json& f = *c.fields;
  const std::string id = f["teamId"].get<std::string>();
  const bool delete_subteams = f.value("deleteSubteams", false);
  Outcome error;
  auto team = LoadTeam(c, "teamId", id, error);
  if (!team) return error;
  if (auto e = Require(c, id, "team.delete")) return {403, *e};
  const std::vector<std::string> subtree = graph_->Subtree(c.org, id);
  const std::vector<std::string> doomed = delete_subteams ? subtree : std::vector<std::string>{id};
  std::optional<std::string> reassign;
  if (f.contains("reassignTo") && f["reassignTo"].is_string()) {
    reassign = f["reassignTo"].get<std::string>();
    if (!LoadTeam(c, "reassignTo", *reassign, error)) return error;
    if (std::find(doomed.begin(), doomed.end(), *reassign) != doomed.end()) {
      return {422, ErrorBody("validation_error", "reassignTo is a team being deleted",
                             {{"field", "reassignTo"}})};
    }
    if (auto e = Require(c, *reassign, "members.manage")) return {403, *e};
  }
  // Who moves: every member of a deleted team, with the highest role they held there.
  std::map<std::string, Role> moving;
  if (reassign) {
    for (const auto& d : doomed) {
      for (const auto& [user, role] : graph_->Members(c.org, d)) {
        auto [it, fresh] = moving.emplace(user, role);
        if (!fresh) it->second = std::max(it->second, role);
      }
    }
  }
  const auto parent = ParentTeamOf(*team);
  json moved = json::array();
  json deleted = json::array();
  if (delete_subteams) {
    for (auto it = doomed.rbegin(); it != doomed.rend(); ++it) {  // children before parents
      RemoveTeamRecord(c.org, *it);
      deleted.push_back(*it);
    }
  } else {
    for (const auto& child : graph_->Children(c.org, id)) {
      auto ct = graph_->Team(c.org, child);
      if (!ct) continue;
      Reparent(c.org, *ct, parent, c.now);
      moved.push_back(child);
    }
    RemoveTeamRecord(c.org, id);
    deleted.push_back(id);
  }
  const std::string now = FormatTimestamp(c.now);
  for (const auto& d : deleted) {
    Emit(c, "team.deleted", d.get<std::string>(),
         {{"teamId", d}, {"deletedWith", d == id ? json() : json(id)}});
  }
  for (const auto& m : moved) {
    Emit(c, "team.moved", m.get<std::string>(),
         {{"teamId", m},
          {"previousParentId", id},
          {"newParentId", parent ? json(*parent) : json()},
          {"reason", "parent deleted"}});
  }
  for (const auto& [user, role] : moving) {
    auto existing = graph_->RoleIn(c.org, *reassign, user);
    if (existing && *existing >= role) continue;  // keeps the higher role it has there
    json m = MembershipRecord(*reassign, user, role, now, c.actor);
    if (existing) {
      auto old = members_->Get(keys::MemberKey(c.org, *reassign, user));
      json prev = old ? json::parse(*old, nullptr, false) : json::object();
      if (prev.is_object()) m["joinedAt"] = prev.value("joinedAt", now);
    }
    SetRole(c.org, *reassign, user, role, m);
    Emit(c, existing ? "member.role_changed" : "member.added", *reassign, m);
  }
  return {200,
          {{"deleted", true},
           {"teamId", id},
           {"membersReassigned", moving.size()},
           {"reassignTo", reassign ? json(*reassign) : json()},
           {"deletedTeams", deleted},
           {"movedSubteams", moved}}};
}

TeamsProcessor::Outcome TeamsProcessor::MoveTeam(const Command& c) {
  const json& f = *c.fields;
  const std::string id = f["teamId"].get<std::string>();
  Outcome error;
  auto team = LoadTeam(c, "teamId", id, error);
  if (!team) return error;
  std::optional<std::string> target;
  if (f["newParentId"].is_string()) target = f["newParentId"].get<std::string>();
  std::optional<json> parent;
  if (target) {
    parent = LoadTeam(c, "newParentId", *target, error);
    if (!parent) return error;
  }
  if (auto e = Require(c, id, "team.move")) return {403, *e};
  if (target) {
    if (auto e = Require(c, *target, "subteams.create")) return {403, *e};
  }
  if (target) {
    const auto subtree = graph_->Subtree(c.org, id);
    if (std::find(subtree.begin(), subtree.end(), *target) != subtree.end()) {
      return {422, ErrorBody("cycle",
                             *target == id ? "a team cannot be its own parent"
                                           : "the new parent is a descendant of the team",
                             {{"field", "newParentId"}, {"teamId", id}, {"newParentId", *target}})};
    }
    if (team->value("visibility", "") == "secret" || parent->value("visibility", "") == "secret") {
      return {422,
              ErrorBody("secret_nesting", "a secret team can neither have a parent nor be a parent",
                        {{"field", "newParentId"}})};
    }
    const int levels =
        static_cast<int>(graph_->Ancestors(c.org, *target).size()) + 1 + graph_->Height(c.org, id);
    if (levels > options_->max_depth) {
      return {422, ErrorBody("depth_exceeded",
                             "the hierarchy may have at most " +
                                 std::to_string(options_->max_depth) + " levels",
                             {{"field", "newParentId"}, {"maxDepth", options_->max_depth}})};
    }
  }
  const auto previous = ParentTeamOf(*team);
  if (previous == target) return {200, *team};
  Reparent(c.org, *team, target, c.now);
  json moved = *graph_->Team(c.org, id);
  Emit(c, "team.moved", id,
       {{"teamId", id},
        {"previousParentId", previous ? json(*previous) : json()},
        {"newParentId", target ? json(*target) : json()}});
  return {200, moved};
}

}  // namespace cm::teams
