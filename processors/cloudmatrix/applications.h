#pragma once

// The applications `--topology NAME` runs, and what the engine makes of them together.
#include <memory>
#include <string>
#include <vector>

#include "processors/counting/counting_topology.h"
#include "processors/teams/teams_options.h"
#include "processors/usage/usage_limits.h"
#include "processors/webhooks/webhooks_options.h"
#include "state/status.h"
#include "topology/application/stream_application.h"

namespace cm::cloudmatrix {

using Applications = std::vector<std::unique_ptr<topology::StreamApplication>>;

// The applications of one `--topology` and the one topology of all their sub-topologies.
struct Composition {
  Applications apps;
  topology::Topology topology;
};

// What the command line sets in the applications; each application takes its part.
struct CloudMatrixOptions {
  usage::UsageLimits usage_limits;
  teams::TeamsOptions teams;                   // the invitation secret and emails
  webhooks::WebhooksOptions webhooks;          // the sender, timeouts, retries, circuit breaker
  counting::CountingTopologyOptions counting;  // --topology counting: when counts go out
};

// "cloudmatrix": the CloudMatrix services (usage, then teams, then webhooks); "counting": the
// engine's test application. Both with the API keys (auth) that authenticate their routes.
// InvalidArgument for any other name or when an application's options are inconsistent.
state::Result<Composition> Compose(const std::string& name, const std::string& app_id,
                                   const CloudMatrixOptions& options = {});
// Every application's snapshot tables in one schema.
topology::SnapshotSchema SnapshotSchemaOf(const Applications& apps);

}  // namespace cm::cloudmatrix
