#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "state/task_state.h"
#include "topology/processor/topology.h"
#include "topology/runtime/record_collector.h"
#include "topology/runtime/stream_task.h"

namespace cm::topology {

struct TestDriverOptions {
  int32_t partitions = 1;       // every source topic gets this many partitions
  std::string state_directory;  // empty: a fresh temporary directory, removed afterwards
  std::string dlq_topic = "cloudmatrix.dlq";
  int64_t wall_clock_start_ms = 0;
  size_t cache_max_bytes = 64ULL << 20;  // the tasks' record cache, as a stream thread's; 0: none
};

// Runs a topology in-process over real RocksDB stores without a broker (Kafka Streams'
// TopologyTestDriver). Input is routed to tasks by key with Kafka's partitioner; outputs are
// captured per topic; Commit makes buffered store writes durable as the engine would.
class TopologyTestDriver {
 public:
  static state::Result<std::unique_ptr<TopologyTestDriver>> Create(const Topology& topology,
                                                                   TestDriverOptions options);
  ~TopologyTestDriver();

  // Input carrying the header kReplayedHeader ("cm-replayed") is processed as a replay after
  // `cmstream replay`: ProcessorContext::Replaying() is true and outputs to external topics are
  // dropped.
  void PipeInput(const std::string& topic, const std::string& key, const std::string& value,
                 int64_t timestamp_ms, std::vector<Header> headers = {});
  // As PipeInput, into `partition` whatever the key (nullopt: by key), as a producer with
  // another partitioner would.
  void PipeInputToPartition(const std::string& topic, std::optional<int32_t> partition,
                            const std::string& key, const std::string& value, int64_t timestamp_ms,
                            std::vector<Header> headers = {});
  // Input to a held topic waits, as records a lagging task has not read yet: the tasks'
  // ProcessorContext::CaughtUp(topic) is false while any waits. ReleaseInput processes them in
  // order and stops holding.
  void HoldInput(const std::string& topic);
  void ReleaseInput(const std::string& topic);
  // Removes and returns what was sent to a topic so far, in send order.
  std::vector<Record> ReadOutput(const std::string& topic);
  void AdvanceWallClock(int64_t delta_ms);
  int64_t wall_clock_ms() const { return wall_clock_ms_; }
  // Forwards what processors deferred to the commit (ProcessorContext::ForwardAtCommit) and
  // writes every task's buffered store changes, as an engine commit would. Like a stream
  // thread, the driver also commits by itself after an input once the buffered writes and the
  // deferred records exceed `cache_max_bytes`.
  void Commit();
  // Closes and reopens every task from its on-disk state, as after a restart.
  state::Status Restart();

  // The task owning a key for the topology's first sub-topology reading `topic`.
  StreamTask& TaskFor(const std::string& topic, const std::string& key);
  StreamTask& Task(int subtopology, int32_t partition);

 private:
  class Collector;
  TopologyTestDriver(const Topology& topology, TestDriverOptions options);
  state::Status OpenTasks();
  void Route(const std::string& topic, Record record, std::optional<int32_t> partition);
  void DeliverRepartitioned();

  const Topology& topology_;
  TestDriverOptions options_;
  bool owns_directory_ = false;
  std::unique_ptr<state::StateResources> resources_;
  std::unique_ptr<state::RecordCache> cache_;  // outlives the tasks
  std::unique_ptr<Collector> collector_;
  std::map<TaskId, std::unique_ptr<StreamTask>> tasks_;
  std::map<std::string, int64_t> next_offset_;
  // Per held topic, the records waiting and the partitions they were piped to.
  std::map<std::string, std::vector<std::pair<std::optional<int32_t>, Record>>> held_;
  int64_t wall_clock_ms_ = 0;
  bool routing_ = false;
};

}  // namespace cm::topology
