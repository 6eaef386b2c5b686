#pragma once

#include "processors/counting/counting_topology.h"
#include "topology/application/stream_application.h"

namespace cm::counting {

// The counting topology and its GET /v1/counts/{key} route: the engine's smallest
// application, run by `cmstream run --topology counting` for tests and benchmarks.
class CountingApplication final : public topology::StreamApplication {
 public:
  explicit CountingApplication(CountingTopologyOptions options = {})
      : options_(std::move(options)) {}

  std::string name() const override { return "counting"; }
  state::Status AddTo(topology::TopologyBuilder& builder) const override;
  void AddRoutes(topology::RouteContext& context) const override;

 private:
  CountingTopologyOptions options_;
};

}  // namespace cm::counting
