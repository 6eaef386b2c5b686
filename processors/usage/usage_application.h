#pragma once

#include "processors/usage/usage_options.h"
#include "topology/application/stream_application.h"

namespace cm::usage {

// Usage metering (seed task 1) as one application of `cmstream run --topology cloudmatrix`:
// the usage sub-topology (usage_topology.h), its routes (usage_routes.h) and its snapshot
// tables (usage_snapshot_schema.h), all with the same options.
class UsageApplication final : public topology::StreamApplication {
 public:
  explicit UsageApplication(UsageOptions options = {}) : options_(std::move(options)) {}

  std::string name() const override { return "usage"; }
  state::Status AddTo(topology::TopologyBuilder& builder) const override;
  void AddRoutes(topology::RouteContext& context) const override;
  topology::SnapshotSchema snapshot_schema() const override;

 private:
  UsageOptions options_;
};

}  // namespace cm::usage
