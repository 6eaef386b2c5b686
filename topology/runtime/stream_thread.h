#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "state/record_cache.h"
#include "state/task_state.h"
#include "topology/processor/read_only_stores.h"
#include "topology/processor/topology.h"
#include "topology/runtime/commit_signal.h"
#include "topology/runtime/stream_task.h"
#include "topology/runtime/streams_config.h"

namespace cm::topology {

struct TaskStatus {
  std::string task;
  int32_t partition = 0;
  std::map<std::string, int64_t> committed_inputs;  // next offset per source topic, as sealed
  bool running = false;                             // false: restoring
  uint64_t restored_records = 0;
  uint64_t restore_total_records = 0;
  uint64_t processed = 0;
  int64_t lag = 0;
  uint64_t store_entries = 0;
  uint64_t store_bytes = 0;
};

// A snapshot of one stream thread, refreshed after every commit, for /ready and /metrics.
struct ThreadStatus {
  int index = 0;
  bool alive = true;
  bool assigned = false;  // the group has given this thread its first assignment (maybe empty)
  std::string error;
  std::vector<TaskStatus> tasks;
  uint64_t processed = 0;
  uint64_t task_failures = 0;  // tasks failed by a state::StoreFailure (which fails the thread)
  // Input records the broker deleted before they were processed, per (topic, partition).
  std::map<std::pair<std::string, int32_t>, uint64_t> records_lost;
  uint64_t produced = 0;
  uint64_t dlq = 0;
  uint64_t replayed_outputs_dropped = 0;  // after `cmstream replay`: sent before the reset
  // Source records in a partition that does not own their key, per topic: re-produced to their
  // partition, or skipped by a bounded run (RecordCollector::Reroute).
  std::map<std::string, uint64_t> records_rerouted;
  std::map<std::string, uint64_t> misrouted_skipped;
  state::RecordCache::Stats cache;  // all zero without a record cache
  uint64_t commits = 0;
  uint64_t aborted_commits = 0;
  double commit_seconds_sum = 0;
  std::vector<uint64_t> commit_latency_buckets;  // counts per kCommitLatencyBounds
};

inline constexpr double kCommitLatencyBounds[] = {0.001, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,   0.25,  0.5,  1,     5};

// One consumer of the application's group and one producer (transactional under exactly-once),
// running the tasks of the partitions assigned to it.
class StreamThread {
 public:
  // `commits` is notified after each commit of the thread's tasks.
  StreamThread(const Topology& topology, const StreamsConfig& config, int index,
               state::StateResources& resources, CommitSignal& commits);
  ~StreamThread();
  StreamThread(const StreamThread&) = delete;
  StreamThread& operator=(const StreamThread&) = delete;

  void Start();
  // Commits, closes the tasks (keeping their state on disk) and leaves the group.
  void Stop();
  ThreadStatus Status() const;
  // Runs `query` over the committed stores of `task` if this thread runs it (restored and
  // processing); false otherwise. The task cannot close while the query runs.
  bool Query(const TaskId& task, const std::function<void(const ReadOnlyStores&)>& query) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace cm::topology
