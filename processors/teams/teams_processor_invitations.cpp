#include "processors/teams/teams_commands.h"
#include "processors/teams/teams_processor.h"
#include "processors/teams/teams_stores.h"

namespace cm::teams {

using nlohmann::json;

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
              {"createdAt", FormatTimestamp(c.now)},
              {"expiresAt", FormatTimestamp(expires)},
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
  const std::string now = FormatTimestamp(c.now);
  auto existing = graph_->RoleIn(c.org, team, c.actor);
  json m;
  if (existing && *existing >= role) {
    m = json::parse(*members_->Get(keys::MemberKey(c.org, team, c.actor)));
  } else {
    m = MembershipRecord(team, c.actor, role, now, inv.value("invitedBy", ""));
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
  inv["revokedAt"] = FormatTimestamp(c.now);
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
