#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "topology/common/entity_id.h"

namespace cm::teams {

// A team id is an entity id (topology/common/entity_id.h) with tag 't', seeded with the
// creating command's id, so a retried create names the same team: <organizationId>~t<16 hex>.
std::string TeamIdFor(std::string_view organization, std::string_view command_id);
// The organization of a well-formed team id, else nullopt.
std::optional<std::string> OrganizationOfTeamId(std::string_view team_id);

using topology::CheckId;

}  // namespace cm::teams
