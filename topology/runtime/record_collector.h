#pragma once

#include <cstdint>
#include <string>

#include "topology/processor/record.h"

namespace cm::topology {

// Where a task's output records go: Kafka in production, memory in the test driver.
class RecordCollector {
 public:
  virtual ~RecordCollector() = default;
  // Partitioned by key with Kafka's default partitioner.
  virtual void Send(const std::string& topic, const Record& record) = 0;
  // Whether the input being processed is a replay, whose external outputs Send drops
  // (ProcessorContext::Replaying).
  virtual bool Replaying() const = 0;
  // Whether some source partition of the task is still below where it was before the reset
  // (ProcessorContext::ReplayPending).
  virtual bool ReplayPending() const = 0;
};

}  // namespace cm::topology
