#include "processors/teams/teams_commands.h"
#include "processors/teams/teams_processor.h"
#include "processors/teams/teams_stores.h"

namespace cm::teams {

using nlohmann::json;

TeamsProcessor::Outcome TeamsProcessor::AddMember(const Command& c) {
  const json& f = *c.fields;
  const std::string id = f["teamId"].get<std::string>();
  const std::string user = f["userId"].get<std::string>();
  const Role role = *ParseRole(f.value("role", "member"));
  Outcome error;
  if (!LoadTeam(c, "teamId", id, error)) return error;
  if (auto e = Require(c, id, "members.manage")) return {403, *e};
  if (role == Role::kOwner) {
    if (auto e = Require(c, id, "owners.manage")) return {403, *e};
  }
  if (graph_->RoleIn(c.org, id, user)) {
    return {409, ErrorBody("conflict", "the user is already a member of the team",
                           {{"field", "userId"}, {"teamId", id}, {"userId", user}})};
  }
  json m = MembershipRecord(id, user, role, FormatTimestamp(c.now), c.actor);
  SetRole(c.org, id, user, role, m);
  Emit(c, "member.added", id, m);
  return {201, m};
}

TeamsProcessor::Outcome TeamsProcessor::RemoveMember(const Command& c) {
  const json& f = *c.fields;
  const std::string id = f["teamId"].get<std::string>();
  const std::string user = f["userId"].get<std::string>();
  Outcome error;
  if (!LoadTeam(c, "teamId", id, error)) return error;
  auto role = graph_->RoleIn(c.org, id, user);
  if (!role) {
    return {404,
            ErrorBody("not_found", "the user is not a member of the team", {{"field", "userId"}})};
  }
  // A member may always leave; removing someone else takes members.manage (owners.manage
  // for an owner).
  if (user != c.actor) {
    if (auto e = Require(c, id, "members.manage")) return {403, *e};
    if (*role == Role::kOwner) {
      if (auto e = Require(c, id, "owners.manage")) return {403, *e};
    }
  }
  if (*role == Role::kOwner) {
    int owners = 0;
    for (const auto& [u, r] : graph_->Members(c.org, id)) owners += r == Role::kOwner;
    if (owners <= 1) {
      return {403, Forbidden("the last owner of a team cannot leave or be removed; make another "
                             "member owner first",
                             {{"reason", "last_owner"}, {"teamId", id}, {"userId", user}})};
    }
  }
  SetRole(c.org, id, user, std::nullopt, json());
  Emit(c, "member.removed", id,
       {{"teamId", id}, {"userId", user}, {"role", RoleName(*role)}, {"removedBy", c.actor}});
  return {200, {{"removed", true}, {"teamId", id}, {"userId", user}}};
}

TeamsProcessor::Outcome TeamsProcessor::UpdateMemberRole(const Command& c) {
  const json& f = *c.fields;
  const std::string id = f["teamId"].get<std::string>();
  const std::string user = f["userId"].get<std::string>();
  const Role role = *ParseRole(f["role"].get<std::string>());
  Outcome error;
  if (!LoadTeam(c, "teamId", id, error)) return error;
  auto stored = members_->Get(keys::MemberKey(c.org, id, user));
  auto current = graph_->RoleIn(c.org, id, user);
  if (!stored || !current) {
    return {404,
            ErrorBody("not_found", "the user is not a member of the team", {{"field", "userId"}})};
  }
  if (auto e = Require(c, id, "members.manage")) return {403, *e};
  if (role == Role::kOwner || *current == Role::kOwner) {
    if (auto e = Require(c, id, "owners.manage")) return {403, *e};
  }
  json m = json::parse(*stored);
  if (*current == role) return {200, m};
  if (*current == Role::kOwner) {
    int owners = 0;
    for (const auto& [u, r] : graph_->Members(c.org, id)) owners += r == Role::kOwner;
    if (owners <= 1) {
      return {403, Forbidden("the last owner of a team cannot be demoted; make another member "
                             "owner first",
                             {{"reason", "last_owner"}, {"teamId", id}, {"userId", user}})};
    }
  }
  m["role"] = RoleName(role);
  SetRole(c.org, id, user, role, m);
  json data = m;
  data["previousRole"] = RoleName(*current);
  Emit(c, "member.role_changed", id, data);
  return {200, m};
}

}  // namespace cm::teams
