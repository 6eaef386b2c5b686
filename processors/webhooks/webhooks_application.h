#pragma once

#include "processors/webhooks/webhooks_options.h"
#include "topology/application/stream_application.h"

namespace cm::webhooks {

// Webhook delivery (seed task 3) as one application of `cmstream run --topology cloudmatrix`:
// the webhooks sub-topology (webhooks_topology.h, under the source usage adds) and its routes.
class WebhooksApplication final : public topology::StreamApplication {
 public:
  explicit WebhooksApplication(WebhooksOptions options = {}) : options_(std::move(options)) {}

  std::string name() const override { return "webhooks"; }
  state::Status AddTo(topology::TopologyBuilder& builder) const override;
  void AddRoutes(topology::RouteContext& context) const override;
  topology::SnapshotSchema snapshot_schema() const override;

 private:
  WebhooksOptions options_;
};

}  // namespace cm::webhooks
