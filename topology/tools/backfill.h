#pragma once

#include <cstdint>
#include <map>

#include "state/status.h"
#include "topology/runtime/kafka_streams.h"
#include "topology/runtime/streams_config.h"
#include "topology/tools/application_reset.h"

namespace cm::topology {

struct BackfillProgress {
  uint64_t done = 0;   // input offsets of the range processed and committed
  uint64_t total = 0;  // input offsets in the range
  bool finished = false;
};

// `cmstream backfill`: a second application id run over a bounded range of the input while
// the live application keeps running. The backfill's application is reset to the offsets at
// the range's start (its stores, changelogs and commit logs start empty), every input
// partition stops at the end offset seen at start or the offset at the range's end, whichever
// comes first, and outputs to non-internal topics go to "<app-id>-"-prefixed topics.
class Backfill {
 public:
  // Refuses (Conflict) while an instance of the backfill's application id runs. `reset` holds
  // the range's start; `to_ms` its end (exclusive).
  static state::Result<Backfill> Prepare(const Topology& topology, TopicAdmin& admin,
                                         const ResetOptions& reset, int64_t to_ms);

  // Bounded mode and redirected outputs, for the backfill's StreamsConfig.
  void Configure(StreamsConfig& config) const;
  // From the committed input positions the stream threads report.
  BackfillProgress Progress(const KafkaStreams& streams) const;

  const std::map<TopicPartition, int64_t>& start() const { return start_; }
  const std::map<TopicPartition, int64_t>& stop() const { return stop_; }

 private:
  std::string prefix_;
  std::map<TopicPartition, int64_t> start_;
  std::map<TopicPartition, int64_t> stop_;
};

}  // namespace cm::topology
