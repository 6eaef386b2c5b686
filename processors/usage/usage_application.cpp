#include "processors/usage/usage_application.h"

#include "processors/usage/usage_routes.h"
#include "processors/usage/usage_snapshot_schema.h"
#include "processors/usage/usage_topology.h"

namespace cm::usage {

state::Status UsageApplication::AddTo(topology::TopologyBuilder& builder) const {
  return AddUsageTopology(builder, options_);
}

void UsageApplication::AddRoutes(topology::RouteContext& context) const {
  AddUsageRoutes(context.server, context.streams, context.router, context.commands, {}, options_);
}

topology::SnapshotSchema UsageApplication::snapshot_schema() const {
  return UsageSnapshotSchema(options_.catalog);
}

}  // namespace cm::usage
