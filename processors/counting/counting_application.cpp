#include "processors/counting/counting_application.h"

#include "processors/counting/counting_routes.h"

namespace cm::counting {

state::Status CountingApplication::AddTo(topology::TopologyBuilder& builder) const {
  AddCountingTopology(builder, options_);
  return state::Status::OK();
}

void CountingApplication::AddRoutes(topology::RouteContext& context) const {
  AddCountingRoutes(context.server, context.streams, context.router, options_);
}

}  // namespace cm::counting
