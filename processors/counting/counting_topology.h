#pragma once

#include <string>

#include "topology/processor/topology.h"

namespace cm::counting {

// The smallest stateful application: counts records per key in a key-value store and emits
// (key, count) on every update. Kept for the engine's tests, benchmarks and quickstart.
struct CountingTopologyOptions {
  std::string input_topic = "count-input";
  std::string output_topic = "count-output";
  std::string store = "counts";
};

void AddCountingTopology(topology::TopologyBuilder& builder,
                         const CountingTopologyOptions& options = {});

}  // namespace cm::counting
