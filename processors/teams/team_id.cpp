#include "processors/teams/team_id.h"

#include "topology/common/crypto.h"

namespace cm::teams {

std::string TeamIdFor(std::string_view organization, std::string_view command_id) {
  const std::string hex = topology::HexEncode(topology::Sha256(command_id)).substr(0, 16);
  return std::string(organization) + "~t" + hex;
}

std::optional<std::string> OrganizationOfTeamId(std::string_view team_id) {
  const size_t tilde = team_id.rfind('~');
  if (tilde == std::string_view::npos || tilde == 0) return std::nullopt;
  std::string_view tail = team_id.substr(tilde + 1);
  if (tail.size() != 17 || tail[0] != 't') return std::nullopt;
  for (char c : tail.substr(1)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return std::string(team_id.substr(0, tilde));
}

state::Status CheckId(std::string_view id, size_t max_bytes, std::string_view field) {
  const std::string name(field);
  if (id.empty()) return state::Status::InvalidArgument(name + " must not be empty");
  if (id.size() > max_bytes)
    return state::Status::InvalidArgument(name + " must be at most " + std::to_string(max_bytes) +
                                          " bytes");
  for (unsigned char c : id) {
    if (c == '/' || c <= 0x20 || c == 0x7f)
      return state::Status::InvalidArgument(name +
                                            " must not contain '/', spaces or control characters");
  }
  return state::Status::OK();
}

}  // namespace cm::teams
