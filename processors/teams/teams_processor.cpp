#include "processors/teams/teams_processor.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "processors/teams/team_id.h"
#include "processors/teams/teams_commands.h"
#include "processors/teams/teams_stores.h"
#include "topology/common/crypto.h"
#include "topology/common/json.h"

namespace cm::teams {

using nlohmann::json;
using topology::Record;

namespace {

json Forbidden(const std::string& message, json details) {
  return ErrorBody("forbidden", message, std::move(details));
}

std::string OptString(const json& j, const std::string& field) {
  auto it = j.find(field);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::optional<std::string> ParentOf(const json& team) {
  auto it = team.find("parentTeamId");
  if (it == team.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

json Membership(const std::string& team, const std::string& user, Role role,
                const std::string& joined_at, const std::string& added_by) {
  return {{"teamId", team},
          {"userId", user},
          {"role", RoleName(role)},
          {"joinedAt", joined_at},
          {"addedBy", added_by}};
}

void PutGrants(state::KeyValueStore& store, const std::string& key, Grants grants) {
  if (grants.empty()) {
    store.Delete(key);
    return;
  }
  std::sort(grants.begin(), grants.end(),
            [](const Grant& a, const Grant& b) { return a.team_id < b.team_id; });
  store.Put(key, EncodeGrants(grants));
}

}  // namespace

PermissionCheck CheckPermission(const TeamGraph& graph, const std::string& org,
                                const std::string& team, const std::string& user,
                                const std::string& permission) {
  PermissionCheck out;
  auto least = LeastRoleWith(permission);
  if (!least) {
    out.reason = "unknown permission '" + permission + "'";
    return out;
  }
  const Grants grants = graph.MaterializedGrants(org, team, user);
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

TeamsProcessor::TeamsProcessor(std::shared_ptr<const TeamsOptions> options)
    : options_(std::move(options)) {}

void TeamsProcessor::Init(topology::ProcessorContext& context) {
  context_ = &context;
  teams_ = &context.GetKeyValueStore(kTeamsStore);
  members_ = &context.GetKeyValueStore(kMembersStore);
  permissions_ = &context.GetKeyValueStore(kPermissionsStore);
  invitations_ = &context.GetKeyValueStore(kInvitationsStore);
  results_ = &context.GetKeyValueStore(kCommandResultsStore);
  timers_ = &context.GetTimerStore(kInvitationTimersStore);
  graph_ = std::make_unique<TeamGraph>(
      TeamsStoreViews{teams_, members_, permissions_, invitations_, results_});
  // Expiry is wall-clock time: an invitation expires even when no record arrives.
  context.Schedule(std::chrono::milliseconds(options_->expiry_check_interval_ms),
                   topology::PunctuationType::kWallClockTime,
                   [this](int64_t now) { ExpireInvitations(now); });
  // After the expiry punctuation: an invitation that expires is not emailed in the same tick.
  mailer_ = std::make_unique<InvitationMailer>(context, options_);
}

void TeamsProcessor::Process(const Record& record) {
  if (record.topic != options_->commands_topic) return;  // usage events share the source
  auto parsed = topology::ParseJson(record.value, options_->max_json_depth);
  // Malformed commands are the usage processor's to report (it reads the same records).
  if (!parsed.ok() || !parsed->is_object()) return;
  const json& cmd = *parsed;
  const std::string type = OptString(cmd, "type");
  if (type.rfind("teams.", 0) != 0) return;  // another application's command
  const std::string id = OptString(cmd, "commandId");
  if (id.empty() || id.size() > 256) {
    context_->SendToDlq(record, "teams command needs a commandId (a string of 1..256 bytes)");
    return;
  }
  const std::string rkey = keys::CommandResultKey(id);
  if (results_->Get(rkey)) return;  // applied before: a retry changes nothing

  Command c{type,
            id,
            OptString(cmd, "organizationId"),
            OptString(cmd, "actorUserId"),
            record.timestamp_ms,
            &cmd};
  pending_events_.clear();
  Outcome outcome;
  if (c.org.empty() || c.org != record.key) {
    outcome = {400, ErrorBody("validation_error",
                              "organizationId is required and must equal the record key",
                              {{"field", "organizationId"}})};
  } else if (auto s = CheckId(c.org, options_->max_id_bytes, "organizationId"); !s.ok()) {
    outcome = {400, ErrorBody("validation_error", s.message(), {{"field", "organizationId"}})};
  } else if (auto error = CheckCommandFields(type, cmd, *options_)) {
    outcome = {400, std::move(*error)};
  } else {
    outcome = Apply(c);
  }
  if (outcome.status >= 300) pending_events_.clear();  // a refused command emits nothing
  json result = {{"commandId", id},         {"type", type},
                 {"organizationId", c.org}, {"status", outcome.status},
                 {"body", outcome.body},    {"appliedAt", FormatTime(c.now)}};
  if (cmd.contains("requestHash") && cmd["requestHash"].is_string())
    result["requestHash"] = cmd["requestHash"];
  results_->Put(rkey, result.dump());
  for (const auto& r : pending_events_) context_->ForwardTo(kTeamEventsSinkNode, r);
  pending_events_.clear();
}

TeamsProcessor::Outcome TeamsProcessor::Apply(const Command& c) {
  if (c.type == kCreateTeam) return CreateTeam(c);
  if (c.type == kUpdateTeam) return UpdateTeam(c);
  if (c.type == kDeleteTeam) return DeleteTeam(c);
  if (c.type == kAddMember) return AddMember(c);
  if (c.type == kRemoveMember) return RemoveMember(c);
  if (c.type == kUpdateMemberRole) return UpdateMemberRole(c);
  if (c.type == kMoveTeam) return MoveTeam(c);
  if (c.type == kCreateInvitation) return CreateInvitation(c);
  if (c.type == kAcceptInvitation) return AcceptInvitation(c);
  if (c.type == kRevokeInvitation) return RevokeInvitation(c);
  return {400, ErrorBody("validation_error", "unknown teams command type '" + c.type + "'")};
}

// --- helpers -------------------------------------------------------------------------------

std::optional<json> TeamsProcessor::Require(const Command& c, const std::string& team,
                                            const std::string& permission) {
  PermissionCheck check = CheckPermission(*graph_, c.org, team, c.actor, permission);
  if (check.allowed) return std::nullopt;
  return Forbidden("actor " + c.actor + " may not do this: " + check.reason,
                   {{"permission", permission},
                    {"teamId", team},
                    {"actorUserId", c.actor},
                    {"reason", check.reason}});
}

std::optional<json> TeamsProcessor::LoadTeam(const Command& c, const std::string& field,
                                             const std::string& team, Outcome& error) {
  auto org = OrganizationOfTeamId(team);
  if (org && *org != c.org) {
    error = {422, ErrorBody("cross_organization", field + " names a team of another organization",
                            {{"field", field}})};
    return std::nullopt;
  }
  auto t = graph_->Team(c.org, team);
  if (!t) error = {404, ErrorBody("not_found", "no such team", {{"field", field}, {field, team}})};
  return t;
}

void TeamsProcessor::SetRole(const std::string& org, const std::string& team,
                             const std::string& user, std::optional<Role> role,
                             const json& membership) {
  if (role) {
    members_->Put(keys::MemberKey(org, team, user), membership.dump());
  } else {
    members_->Delete(keys::MemberKey(org, team, user));
  }
  // The grant from `team` applies in every team of its subtree.
  for (const auto& d : graph_->Subtree(org, team)) {
    const std::string key = keys::GrantsKey(org, d, user);
    Grants grants = graph_->MaterializedGrants(org, d, user);
    std::erase_if(grants, [&](const Grant& g) { return g.team_id == team; });
    if (role) grants.push_back({team, *role});
    PutGrants(*permissions_, key, std::move(grants));
  }
}

void TeamsProcessor::Reparent(const std::string& org, json team,
                              const std::optional<std::string>& new_parent, int64_t now) {
  const std::string id = team.value("id", "");
  const auto old_parent = ParentOf(team);
  teams_->Delete(keys::ChildKey(org, old_parent.value_or(""), id));
  teams_->Put(keys::ChildKey(org, new_parent.value_or(""), id), "");
  team["parentTeamId"] = new_parent ? json(*new_parent) : json();
  team["updatedAt"] = FormatTime(now);
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
      PutGrants(*permissions_, keys::GrantsKey(org, d, user), std::move(grants));
  }
}

void TeamsProcessor::RemoveTeamRecord(const std::string& org, const std::string& team) {
  auto t = graph_->Team(org, team);
  if (!t) return;
  for (const auto& [user, role] : graph_->Members(org, team))
    members_->Delete(keys::MemberKey(org, team, user));
  std::vector<std::string> grant_keys;
  permissions_->PrefixScan(keys::GrantsPrefix(org, team),
                           [&](std::string_view k, std::string_view) {
                             grant_keys.emplace_back(k);
                             return true;
                           });
  for (const auto& k : grant_keys) permissions_->Delete(k);
  teams_->Delete(keys::NameKey(org, LowerName(t->value("name", ""))));
  teams_->Delete(keys::ChildKey(org, ParentOf(*t).value_or(""), team));
  teams_->Delete(keys::TeamKey(org, team));
}

void TeamsProcessor::Emit(const Command& c, const std::string& type, const std::string& subject,
                          json data) {
  // Deterministic: the command id and the event's place among the command's events.
  const std::string id =
      "tev_" +
      topology::HexEncode(topology::Sha256(c.id + '\0' + std::to_string(pending_events_.size())))
          .substr(0, 32);
  json event = {{"specversion", "1.0"},
                {"id", id},
                {"eventId", id},
                {"source", "cmstream/teams"},
                {"type", type},
                {"eventType", type},
                {"subject", subject},
                {"time", FormatTime(c.now)},
                {"datacontenttype", "application/json"},
                {"organizationId", c.org},
                {"actorUserId", c.actor.empty() ? json() : json(c.actor)},
                {"commandId", c.id},
                {"data", std::move(data)}};
  Record r;
  r.key = c.org;
  r.value = event.dump();
  r.timestamp_ms = c.now;
  r.headers = {{"content-type", "application/json"},
               {"ce_type", type},
               {"ce_id", id},
               {"ce_source", "cmstream/teams"},
               {"ce_specversion", "1.0"}};
  pending_events_.push_back(std::move(r));
}

// --- teams ---------------------------------------------------------------------------------

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
  const std::string now = FormatTime(c.now);
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
      PutGrants(*permissions_, keys::GrantsKey(c.org, id, user), grants);
  }
  SetRole(c.org, id, c.actor, Role::kOwner, Membership(id, c.actor, Role::kOwner, now, c.actor));
  Emit(c, "team.created", id, team);
  Emit(c, "member.added", id, Membership(id, c.actor, Role::kOwner, now, c.actor));
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
    if (f["visibility"] == "secret" && (ParentOf(*team) || !graph_->Children(c.org, id).empty())) {
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
  (*team)["updatedAt"] = FormatTime(c.now);
  if (changes.contains("name")) {
    teams_->Delete(keys::NameKey(c.org, LowerName(old_name)));
    teams_->Put(keys::NameKey(c.org, LowerName(changes["name"].get<std::string>())), id);
  }
  teams_->Put(keys::TeamKey(c.org, id), team->dump());
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
  const auto parent = ParentOf(*team);
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
  const std::string now = FormatTime(c.now);
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
    json m = Membership(*reassign, user, role, now, c.actor);
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
  const auto previous = ParentOf(*team);
  if (previous == target) return {200, *team};
  Reparent(c.org, *team, target, c.now);
  json moved = *graph_->Team(c.org, id);
  Emit(c, "team.moved", id,
       {{"teamId", id},
        {"previousParentId", previous ? json(*previous) : json()},
        {"newParentId", target ? json(*target) : json()}});
  return {200, moved};
}

// --- membership ----------------------------------------------------------------------------

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
  json m = Membership(id, user, role, FormatTime(c.now), c.actor);
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

// --- invitations ---------------------------------------------------------------------------

TeamsProcessor::Outcome TeamsProcessor::CreateInvitation(const Command& c) {
  const json& f = *c.fields;
  const std::string id = f["teamId"].get<std::string>();
  const Role role = *ParseRole(f.value("role", "member"));
  Outcome error;
  if (!LoadTeam(c, "teamId", id, error)) return error;
  if (auto e = Require(c, id, "invitations.manage")) return {403, *e};
  if (role == Role::kOwner) {
    if (auto e = Require(c, id, "owners.manage")) return {403, *e};
  }
  const std::string invitation_id = f["invitationId"].get<std::string>();
  const std::string token_hash = f["tokenHash"].get<std::string>();
  if (invitations_->Get(keys::InvitationKey(c.org, invitation_id)) ||
      invitations_->Get(keys::TokenHashKey(token_hash))) {
    return {409, ErrorBody("conflict", "an invitation with this id or token exists",
                           {{"field", "invitationId"}})};
  }
  const int64_t expires = c.now + f.value("expiresInMs", options_->invitation_ttl_ms);
  json inv = {{"id", invitation_id},
              {"teamId", id},
              {"organizationId", c.org},
              {"email", f["email"]},
              {"role", RoleName(role)},
              {"message", f.value("message", json())},
              {"invitedBy", c.actor},
              {"createdAt", FormatTime(c.now)},
              {"expiresAt", FormatTime(expires)},
              {"expiresAtMs", expires},
              {"status", "pending"},
              {"tokenHash", token_hash}};
  invitations_->Put(keys::InvitationKey(c.org, invitation_id), inv.dump());
  invitations_->Put(keys::TokenHashKey(token_hash), invitation_id);
  json timer = {{"organizationId", c.org}, {"invitationId", invitation_id}};
  timers_->Schedule(c.org + '\0' + invitation_id, expires, timer.dump());
  mailer_->Invited(inv, f.value("nonce", ""), c.now);
  json data = inv;
  data.erase("tokenHash");
  Emit(c, "invitation.sent", id, data);
  return {201, data};
}

TeamsProcessor::Outcome TeamsProcessor::AcceptInvitation(const Command& c) {
  const std::string token_hash = (*c.fields)["tokenHash"].get<std::string>();
  // One answer for every token that names nothing: no hint whether a team exists.
  const Outcome unknown{404, ErrorBody("not_found", "no such invitation")};
  auto inv_id = invitations_->Get(keys::TokenHashKey(token_hash));
  if (!inv_id) return unknown;
  auto stored = invitations_->Get(keys::InvitationKey(c.org, *inv_id));
  if (!stored) return unknown;
  json inv = json::parse(*stored);
  const std::string status = inv.value("status", "");
  const bool past_due = c.now >= inv.value("expiresAtMs", int64_t{0});
  if (status != "pending" || past_due) {
    return {410,
            ErrorBody("gone", "the invitation is " + (status == "pending" ? "expired" : status),
                      {{"status", status == "pending" ? "expired" : status}})};
  }
  const std::string team = inv.value("teamId", "");
  if (!graph_->Team(c.org, team)) return {410, ErrorBody("gone", "the team no longer exists")};
  const Role role = *ParseRole(inv.value("role", "member"));
  const std::string now = FormatTime(c.now);
  auto existing = graph_->RoleIn(c.org, team, c.actor);
  json m;
  if (existing && *existing >= role) {
    m = json::parse(*members_->Get(keys::MemberKey(c.org, team, c.actor)));
  } else {
    m = Membership(team, c.actor, role, now, inv.value("invitedBy", ""));
    SetRole(c.org, team, c.actor, role, m);
    Emit(c, existing ? "member.role_changed" : "member.added", team, m);
  }
  inv["status"] = "accepted";
  inv["acceptedAt"] = now;
  inv["acceptedBy"] = c.actor;
  invitations_->Put(keys::InvitationKey(c.org, *inv_id), inv.dump());
  timers_->Cancel(c.org + '\0' + *inv_id);
  mailer_->Closed(c.org, *inv_id, "accepted");
  json data = inv;
  data.erase("tokenHash");
  Emit(c, "invitation.accepted", team, data);
  return {200, m};
}

TeamsProcessor::Outcome TeamsProcessor::RevokeInvitation(const Command& c) {
  const json& f = *c.fields;
  const std::string team = f["teamId"].get<std::string>();
  const std::string inv_id = f["invitationId"].get<std::string>();
  Outcome error;
  if (!LoadTeam(c, "teamId", team, error)) return error;
  auto stored = invitations_->Get(keys::InvitationKey(c.org, inv_id));
  json inv = stored ? json::parse(*stored) : json();
  if (!inv.is_object() || inv.value("teamId", "") != team)
    return {404, ErrorBody("not_found", "no such invitation", {{"field", "invitationId"}})};
  if (auto e = Require(c, team, "invitations.manage")) return {403, *e};
  if (inv.value("status", "") != "pending") {
    return {410, ErrorBody("gone", "the invitation is " + inv.value("status", std::string()),
                           {{"status", inv["status"]}})};
  }
  inv["status"] = "revoked";
  inv["revokedAt"] = FormatTime(c.now);
  inv["revokedBy"] = c.actor;
  invitations_->Put(keys::InvitationKey(c.org, inv_id), inv.dump());
  timers_->Cancel(c.org + '\0' + inv_id);
  mailer_->Closed(c.org, inv_id, "revoked");
  json data = inv;
  data.erase("tokenHash");
  Emit(c, "invitation.revoked", team, data);
  return {200, data};
}

void TeamsProcessor::ExpireInvitations(int64_t now) {
  for (const auto& timer : timers_->PopDue(now, 1000)) {
    json t = json::parse(timer.payload, nullptr, false);
    if (!t.is_object()) continue;
    const std::string org = t.value("organizationId", "");
    const std::string inv_id = t.value("invitationId", "");
    auto stored = invitations_->Get(keys::InvitationKey(org, inv_id));
    if (!stored) continue;
    json inv = json::parse(*stored);
    if (inv.value("status", "") != "pending") continue;
    inv["status"] = "expired";
    invitations_->Put(keys::InvitationKey(org, inv_id), inv.dump());
    mailer_->Closed(org, inv_id, "expired");
    // The event id derives from the invitation, so it is the same whenever expiry runs.
    Command c{"teams.expire", "expire:" + org + '\0' + inv_id, org, "", timer.due_ms, nullptr};
    pending_events_.clear();
    json data = inv;
    data.erase("tokenHash");
    Emit(c, "invitation.expired", inv.value("teamId", ""), data);
    for (const auto& r : pending_events_) context_->ForwardTo(kTeamEventsSinkNode, r);
    pending_events_.clear();
  }
}

}  // namespace cm::teams
