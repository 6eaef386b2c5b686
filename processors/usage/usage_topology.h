#pragma once

#include "processors/usage/usage_options.h"
#include "state/status.h"
#include "topology/processor/topology.h"

namespace cm::usage {

// Adds the usage application: one source (usage-source) reading the events and commands
// topics (co-partitioned, key = organizationId), the usage-processor with the six stores of
// usage_stores.h, and a sink to the quota-alerts topic. Returns InvalidArgument (and adds
// nothing) when the options are inconsistent.
state::Status AddUsageTopology(topology::TopologyBuilder& builder,
                               const UsageOptions& options = {});

}  // namespace cm::usage
