#include "processors/teams/teams_application.h"

#include "processors/teams/teams_routes.h"
#include "processors/teams/teams_snapshot_schema.h"
#include "processors/teams/teams_topology.h"

namespace cm::teams {

state::Status TeamsApplication::AddTo(topology::TopologyBuilder& builder) const {
  return AddTeamsTopology(builder, options_);
}

void TeamsApplication::AddRoutes(topology::RouteContext& context) const {
  AddTeamsRoutes(context.server, context.streams, context.router, context.commands, options_);
}

topology::SnapshotSchema TeamsApplication::snapshot_schema() const { return TeamsSnapshotSchema(); }

}  // namespace cm::teams
