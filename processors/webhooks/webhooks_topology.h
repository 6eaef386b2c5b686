#pragma once

#include "processors/webhooks/webhooks_options.h"
#include "state/status.h"
#include "topology/processor/topology.h"

namespace cm::webhooks {

// Adds the webhooks application: the webhooks-processor under the source of the events and
// commands (options.source_node; with own_source it adds that source too) and a source of its
// own for the team events, quota alerts and attempt outcomes, all co-partitioned by
// organization, with the stores of webhooks_stores.h. InvalidArgument (adding nothing) when
// the options are inconsistent.
state::Status AddWebhooksTopology(topology::TopologyBuilder& builder,
                                  const WebhooksOptions& options = {});

}  // namespace cm::webhooks
