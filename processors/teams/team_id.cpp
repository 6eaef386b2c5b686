#include "processors/teams/team_id.h"

#include "topology/common/entity_id.h"

namespace cm::teams {

std::string TeamIdFor(std::string_view organization, std::string_view command_id) {
  return topology::EntityIdFor(organization, 't', command_id);
}

std::optional<std::string> OrganizationOfTeamId(std::string_view team_id) {
  return topology::OrganizationOfEntityId(team_id, 't');
}

}  // namespace cm::teams
