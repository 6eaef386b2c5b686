#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "topology/processor/record.h"

namespace cm::topology {

// A task's view of its thread: where its output records go (Kafka in production, memory in
// the test driver) and how far its inputs have been read.
class RecordCollector {
 public:
  virtual ~RecordCollector() = default;
  // Partitioned by key with Kafka's default partitioner.
  virtual void Send(const std::string& topic, const Record& record) = 0;
  // The partition of `topic` that owns `key` by Kafka's default partitioner; nullopt when the
  // topic's partition count cannot be learnt (the thread has then failed).
  virtual std::optional<int32_t> PartitionFor(const std::string& topic, const std::string& key) = 0;
  // Re-produces a source record that arrived in a partition not owning its key to the one that
  // does, within the task's commit (SourcePartitioning::kByKey). A bounded run (a backfill)
  // leaves the live topics alone and skips the record: the live application re-produces it.
  virtual void Reroute(const Record& record) = 0;
  // Whether the input being processed is a replay, whose external outputs Send drops
  // (ProcessorContext::Replaying).
  virtual bool Replaying() const = 0;
  // What Replaying answers while the task forwards the records its processors deferred to the
  // commit (ProcessorContext::ForwardAtCommit): true only when every input behind one was a
  // replay. The task sets it back to false afterwards.
  virtual void SetReplaying(bool replaying) = 0;
  // Whether some source partition of the task is still below where it was before the reset
  // (ProcessorContext::ReplayPending).
  virtual bool ReplayPending() const = 0;
  // Whether the task has processed every record of its partition of `topic` that the broker
  // held at the consumer's last fetch (ProcessorContext::CaughtUp).
  virtual bool CaughtUp(const std::string& topic) const = 0;
};

}  // namespace cm::topology
