#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "state/status.h"

namespace cm::teams {

// A team id carries its organization, so a route finds the owning task without a lookup:
//   <organizationId>~t<16 lowercase hex>
// The hex is the first 64 bits of SHA-256 over the creating command's id, so a retried create
// names the same team. '~' is unreserved in URLs; the organization is what precedes the LAST
// '~' (an organization id may itself contain '~').
std::string TeamIdFor(std::string_view organization, std::string_view command_id);
// The organization of a well-formed team id, else nullopt.
std::optional<std::string> OrganizationOfTeamId(std::string_view team_id);

// Organization, user and team ids: 1..max bytes, no '/', no whitespace or control characters
// (they appear in paths). `field` names the field in the message.
state::Status CheckId(std::string_view id, size_t max_bytes, std::string_view field);

}  // namespace cm::teams
