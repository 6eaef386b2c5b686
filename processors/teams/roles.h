#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cm::teams {

// Roles in a team, ordered: member < admin < owner. A role held in a team applies in that team
// and in every team below it (its descendants).
enum class Role { kMember = 1, kAdmin = 2, kOwner = 3 };

std::optional<Role> ParseRole(std::string_view name);
const char* RoleName(Role role);

// The permission table (README "Teams"). Each role has the permissions of the roles below it:
//   member: team.read, members.read, documents.read, documents.write
//   admin:  + team.update, members.manage, invitations.manage, documents.share, subteams.create
//   owner:  + team.delete, team.move, owners.manage
// owners.manage is what granting, demoting or removing an owner needs.
const std::vector<std::string>& AllPermissions();
// The permissions of a role, in AllPermissions() order.
std::vector<std::string> PermissionsOf(Role role);
// The least role that has `permission`, or nullopt for an unknown permission.
std::optional<Role> LeastRoleWith(std::string_view permission);
bool RoleHas(Role role, std::string_view permission);

}  // namespace cm::teams
