#include "processors/webhooks/webhooks_application.h"

#include "processors/webhooks/webhook_metrics.h"
#include "processors/webhooks/webhooks_routes.h"
#include "processors/webhooks/webhooks_snapshot_schema.h"
#include "processors/webhooks/webhooks_topology.h"

namespace cm::webhooks {

state::Status WebhooksApplication::AddTo(topology::TopologyBuilder& builder) const {
  return AddWebhooksTopology(builder, options_);
}

void WebhooksApplication::AddRoutes(topology::RouteContext& context) const {
  AddWebhooksRoutes(context.server, context.streams, context.router, context.commands, options_);
  context.server.AddMetrics([counters = options_.counters, sender = options_.sender] {
    return RenderWebhookMetrics(*counters, sender.get());
  });
}

topology::SnapshotSchema WebhooksApplication::snapshot_schema() const {
  return WebhooksSnapshotSchema();
}

}  // namespace cm::webhooks
