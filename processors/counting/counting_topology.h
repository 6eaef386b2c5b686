#pragma once

#include <string>

#include "topology/processor/topology.h"

namespace cm::counting {

// When the count of a key is emitted.
enum class CountEmit {
  kEveryUpdate,      // (key, count) for every record: outputs per key are exactly 1..n
  kLatestPerCommit,  // (key, count) once per commit for each key that changed, the latest
                     // count (Kafka Streams' count() with its record cache on); fewer outputs
};

// The smallest stateful application: counts records per key in a key-value store and emits
// (key, count). Kept for the engine's tests, benchmarks and quickstart.
struct CountingTopologyOptions {
  std::string input_topic = "count-input";
  std::string output_topic = "count-output";
  std::string store = "counts";
  CountEmit emit = CountEmit::kEveryUpdate;
};

void AddCountingTopology(topology::TopologyBuilder& builder,
                         const CountingTopologyOptions& options = {});

}  // namespace cm::counting
