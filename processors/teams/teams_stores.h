#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "state/key_value_store.h"
#include "state/store_spec.h"
#include "state/task_state.h"
#include "topology/processor/read_only_stores.h"

namespace cm::teams {

// The teams application's stores: key-value, logged, owned by the task of the organization's
// partition of cloudmatrix.commands. str = 4-byte big-endian length + bytes, so a prefix of
// whole fields is a prefix scan.
//
// teams-teams        't' str org str teamId           -> team JSON (the seeds' Team fields)
//                    'n' str org str lower(name)      -> teamId (case-insensitive uniqueness)
//                    'c' str org str parentId str id  -> "" (children; parentId "" = a root)
// teams-members      'm' str org str teamId str user  -> membership JSON {teamId, userId, role,
//                                                        joinedAt, addedBy}
// teams-permissions  'p' str org str teamId str user  -> grants JSON [{teamId, role}], sorted
//     by teamId: every team on the path from the root to teamId (teamId included) where the
//     user holds a role. Maintained on every change, so a check is one Get (README "Teams").
// teams-invitations  'i' str org str invitationId     -> invitation JSON (tokenHash, never the
//                                                        token)
//                    'h' str tokenHash               -> invitationId
// teams-command-results                              -> topology::CommandResults
// teams-invitation-timers (timer store)              -> expiry of pending invitations
//
// The user index, owned by the task of the user's partition of the teams-user-teams
// repartition topic (memberships re-keyed by userId), so a user's teams across organizations
// are one prefix scan:
// teams-user-teams   'u' str user str org str teamId -> membership JSON + organizationId,
//                                                        teamName, visibility
inline constexpr char kTeamsStore[] = "teams-teams";
inline constexpr char kMembersStore[] = "teams-members";
inline constexpr char kPermissionsStore[] = "teams-permissions";
inline constexpr char kInvitationsStore[] = "teams-invitations";
inline constexpr char kCommandResultsStore[] = "teams-command-results";
inline constexpr char kUserTeamsStore[] = "teams-user-teams";

std::vector<state::StoreSpec> TeamsStoreSpecs();

// Read access to the stores (live in the processor and tests, committed in queries).
struct TeamsStoreViews {
  state::ReadOnlyKeyValueStore* teams = nullptr;
  state::ReadOnlyKeyValueStore* members = nullptr;
  state::ReadOnlyKeyValueStore* permissions = nullptr;
  state::ReadOnlyKeyValueStore* invitations = nullptr;
  state::ReadOnlyKeyValueStore* command_results = nullptr;

  static TeamsStoreViews Live(state::TaskState& task);
  static TeamsStoreViews Committed(const topology::ReadOnlyStores& stores);
  bool complete() const {
    return teams && members && permissions && invitations && command_results;
  }
};

namespace keys {

std::string TeamKey(std::string_view org, std::string_view team);
std::string TeamsOfOrgPrefix(std::string_view org);
std::string NameKey(std::string_view org, std::string_view lower_name);
std::string ChildKey(std::string_view org, std::string_view parent, std::string_view child);
std::string ChildrenPrefix(std::string_view org, std::string_view parent);
std::string MemberKey(std::string_view org, std::string_view team, std::string_view user);
std::string MembersPrefix(std::string_view org, std::string_view team);
std::string GrantsKey(std::string_view org, std::string_view team, std::string_view user);
std::string GrantsPrefix(std::string_view org, std::string_view team);
std::string InvitationKey(std::string_view org, std::string_view invitation_id);
std::string TokenHashKey(std::string_view token_hash);
std::string UserTeamKey(std::string_view user, std::string_view org, std::string_view team);
std::string UserTeamsPrefix(std::string_view user);

// The last str field of a key (the child, user or team id a scan visits).
std::string LastField(std::string_view key);

}  // namespace keys

}  // namespace cm::teams
