#pragma once

#include "processors/teams/teams_options.h"
#include "topology/application/stream_application.h"

namespace cm::teams {

// Team management (seed task 2) as one application of `cmstream run --topology cloudmatrix`:
// the teams sub-topology (teams_topology.h, under the commands source the usage application
// adds) and its routes (teams_routes.h).
class TeamsApplication final : public topology::StreamApplication {
 public:
  explicit TeamsApplication(TeamsOptions options = {}) : options_(std::move(options)) {}

  std::string name() const override { return "teams"; }
  state::Status AddTo(topology::TopologyBuilder& builder) const override;
  void AddRoutes(topology::RouteContext& context) const override;
  topology::SnapshotSchema snapshot_schema() const override;

 private:
  TeamsOptions options_;
};

}  // namespace cm::teams
