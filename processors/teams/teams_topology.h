#pragma once

#include "processors/teams/teams_options.h"
#include "state/status.h"
#include "topology/processor/topology.h"

namespace cm::teams {

// Adds the teams application: the teams-processor under the source that reads the commands
// topic (options.source_node; with own_source it adds that source too), the stores of
// teams_stores.h plus the invitation timer store, and a sink to cloudmatrix.team-events.
// InvalidArgument (adding nothing) when the options are inconsistent.
state::Status AddTeamsTopology(topology::TopologyBuilder& builder,
                               const TeamsOptions& options = {});

}  // namespace cm::teams
