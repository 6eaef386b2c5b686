#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "processors/teams/teams_options.h"
#include "state/key_value_store.h"
#include "topology/common/timestamp.h"
#include "topology/processor/command_results.h"

namespace cm::teams {

// Teams commands on cloudmatrix.commands, keyed by organizationId. Each is a JSON object
// {"type", "commandId", "requestHash", "issuedAt", "organizationId", "actorUserId", ...};
// types not starting with "teams." belong to other applications and are ignored here.
//
//   teams.create_team        {name, description?, parentTeamId?, visibility?, settings?}
//   teams.update_team        {teamId, name?, description?, visibility?, settings?}
//   teams.delete_team        {teamId, reassignTo?, deleteSubteams?}
//   teams.add_member         {teamId, userId, role?}
//   teams.remove_member      {teamId, userId}
//   teams.update_member_role {teamId, userId, role}
//   teams.move_team          {teamId, newParentId: id | null}
//   teams.create_invitation  {teamId, email, role?, message?, invitationId, tokenHash,
//                             expiresInMs?}  (the token itself never reaches Kafka)
//   teams.accept_invitation  {tokenHash}   (actorUserId becomes the member)
//   teams.revoke_invitation  {teamId, invitationId}
//
// The outcome is recorded in teams-command-results (topology::CommandResults, kept for
// TeamsOptions::command_result_retention_ms); a command whose id has a result is not applied
// again. A failing command changes no other store.
inline constexpr char kCreateTeam[] = "teams.create_team";
inline constexpr char kUpdateTeam[] = "teams.update_team";
inline constexpr char kDeleteTeam[] = "teams.delete_team";
inline constexpr char kAddMember[] = "teams.add_member";
inline constexpr char kRemoveMember[] = "teams.remove_member";
inline constexpr char kUpdateMemberRole[] = "teams.update_member_role";
inline constexpr char kMoveTeam[] = "teams.move_team";
inline constexpr char kCreateInvitation[] = "teams.create_invitation";
inline constexpr char kAcceptInvitation[] = "teams.accept_invitation";
inline constexpr char kRevokeInvitation[] = "teams.revoke_invitation";

using topology::ErrorBody;
using topology::FormatTimestamp;

// The field checks that need no state, for the routes (before appending) and the processor
// (commands may come from elsewhere). nullopt when valid, else a 400 body naming the field.
std::optional<nlohmann::json> CheckCommandFields(std::string_view type,
                                                 const nlohmann::json& command,
                                                 const TeamsOptions& options);

}  // namespace cm::teams
