#include "processors/teams/teams_processor.h"

#include <chrono>

#include "processors/teams/team_id.h"
#include "processors/teams/teams_commands.h"
#include "processors/teams/teams_stores.h"
#include "topology/common/crypto.h"
#include "topology/common/json.h"

namespace cm::teams {

using nlohmann::json;
using topology::Record;

json TeamsProcessor::Forbidden(const std::string& message, json details) {
  return ErrorBody("forbidden", message, std::move(details));
}

json TeamsProcessor::MembershipRecord(const std::string& team, const std::string& user, Role role,
                                      const std::string& joined_at, const std::string& added_by) {
  return {{"teamId", team},
          {"userId", user},
          {"role", RoleName(role)},
          {"joinedAt", joined_at},
          {"addedBy", added_by}};
}

TeamsProcessor::TeamsProcessor(std::shared_ptr<const TeamsOptions> options)
    : options_(std::move(options)) {}

void TeamsProcessor::Init(topology::ProcessorContext& context) {
  context_ = &context;
  teams_ = &context.GetKeyValueStore(kTeamsStore);
  members_ = &context.GetKeyValueStore(kMembersStore);
  permissions_ = &context.GetKeyValueStore(kPermissionsStore);
  invitations_ = &context.GetKeyValueStore(kInvitationsStore);
  auto& results = context.GetKeyValueStore(kCommandResultsStore);
  results_.emplace(results);
  timers_ = &context.GetTimerStore(kInvitationTimersStore);
  graph_ = std::make_unique<TeamGraph>(
      TeamsStoreViews{teams_, members_, permissions_, invitations_, &results});
  // Expiry is wall-clock time: an invitation expires even when no record arrives.
  context.Schedule(std::chrono::milliseconds(options_->expiry_check_interval_ms),
                   topology::PunctuationType::kWallClockTime,
                   [this](int64_t now) { Maintain(now); });
  // After the expiry punctuation: an invitation that expires is not emailed in the same tick.
  mailer_ = std::make_unique<InvitationMailer>(context, options_);
}

void TeamsProcessor::Process(const Record& record) {
  if (record.topic != options_->commands_topic) return;  // usage events share the source
  auto parsed = topology::ParseJson(record.value, options_->max_json_depth);
  // Malformed commands are the usage processor's to report (it reads the same records).
  if (!parsed.ok() || !parsed->is_object()) return;
  const json& cmd = *parsed;
  const std::string type = topology::StringField(cmd, "type");
  if (type.rfind("teams.", 0) != 0) return;  // another application's command
  const std::string id = topology::StringField(cmd, "commandId");
  if (id.empty() || id.size() > 256) {
    context_->SendToDlq(record, "teams command needs a commandId (a string of 1..256 bytes)");
    return;
  }
  if (results_->Applied(id)) return;  // applied before: a retry changes nothing

  Command c{type,
            id,
            topology::StringField(cmd, "organizationId"),
            topology::StringField(cmd, "actorUserId"),
            record.timestamp_ms,
            &cmd};
  pending_events_.clear();
  pending_index_.clear();
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
  if (outcome.status >= 300) {  // a refused command emits nothing
    pending_events_.clear();
    pending_index_.clear();
  }
  std::optional<std::string> request_hash;
  if (cmd.contains("requestHash") && cmd["requestHash"].is_string())
    request_hash = cmd["requestHash"].get<std::string>();
  results_->Record({id, type, c.org, outcome.status, outcome.body, request_hash, c.now});
  for (const auto& r : pending_events_) context_->ForwardTo(kTeamEventsSinkNode, r);
  for (const auto& r : pending_index_) context_->ForwardTo(kUserIndexSinkNode, r);
  pending_events_.clear();
  pending_index_.clear();
}

void TeamsProcessor::Maintain(int64_t now) {
  ExpireInvitations(now);
  results_->ExpireBefore(now - options_->command_result_retention_ms);
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

void TeamsProcessor::IndexMembership(const std::string& org, const std::string& team,
                                     const std::string& user,
                                     const std::optional<json>& membership) {
  json entry = {{"organizationId", org}, {"teamId", team}, {"userId", user}};
  if (membership) {
    entry.update(*membership);
    auto t = graph_->Team(org, team);
    entry["teamName"] = t ? t->value("name", "") : "";
    entry["visibility"] = t ? t->value("visibility", "") : "";
  } else {
    entry["removed"] = true;
  }
  Record r;
  r.key = user;
  r.value = entry.dump();
  r.timestamp_ms = context_->StreamTime();
  pending_index_.push_back(std::move(r));
}

// --- helpers -------------------------------------------------------------------------------

std::optional<json> TeamsProcessor::Require(const Command& c, const std::string& team,
                                            const std::string& permission) {
  PermissionCheck check =
      CheckPermission(graph_->MaterializedGrants(c.org, team, c.actor), team, c.actor, permission);
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
                {"time", FormatTimestamp(c.now)},
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

}  // namespace cm::teams
