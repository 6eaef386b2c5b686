#include "processors/teams/roles.h"

#include <utility>

namespace cm::teams {

namespace {

// (permission, least role that has it), in the documented order.
const std::vector<std::pair<std::string, Role>>& Table() {
  static const std::vector<std::pair<std::string, Role>> kTable = {
      {"team.read", Role::kMember},         {"members.read", Role::kMember},
      {"documents.read", Role::kMember},    {"documents.write", Role::kMember},
      {"team.update", Role::kAdmin},        {"members.manage", Role::kAdmin},
      {"invitations.manage", Role::kAdmin}, {"documents.share", Role::kAdmin},
      {"subteams.create", Role::kAdmin},    {"team.delete", Role::kOwner},
      {"team.move", Role::kOwner},          {"owners.manage", Role::kOwner},
  };
  return kTable;
}

}  // namespace

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "member") return Role::kMember;
  if (name == "admin") return Role::kAdmin;
  if (name == "owner") return Role::kOwner;
  return std::nullopt;
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kMember:
      return "member";
    case Role::kAdmin:
      return "admin";
    case Role::kOwner:
      return "owner";
  }
  return "member";
}

const std::vector<std::string>& AllPermissions() {
  static const std::vector<std::string> kAll = [] {
    std::vector<std::string> out;
    for (const auto& [p, r] : Table()) out.push_back(p);
    return out;
  }();
  return kAll;
}

std::vector<std::string> PermissionsOf(Role role) {
  std::vector<std::string> out;
  for (const auto& [p, r] : Table())
    if (r <= role) out.push_back(p);
  return out;
}

std::optional<Role> LeastRoleWith(std::string_view permission) {
  for (const auto& [p, r] : Table())
    if (p == permission) return r;
  return std::nullopt;
}

bool RoleHas(Role role, std::string_view permission) {
  auto least = LeastRoleWith(permission);
  return least && *least <= role;
}

}  // namespace cm::teams
