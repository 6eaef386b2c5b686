#pragma once

#include <librdkafka/rdkafka.h>

#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>

#include "state/record_cache.h"
#include "state/task_state.h"
#include "topology/processor/read_only_stores.h"
#include "topology/processor/topology.h"
#include "topology/runtime/record_collector_impl.h"
#include "topology/runtime/state_writer.h"
#include "topology/runtime/stream_thread.h"
#include "topology/runtime/streams_config.h"
#include "topology/runtime/task_committer.h"
#include "topology/runtime/task_runtime.h"
#include "topology/runtime/thread_failure.h"

namespace cm::topology {

// The tasks of one stream thread (Kafka Streams' TaskManager): what a rebalance does to them,
// their lifecycle and which task consumes which partition. A task is created restoring, with
// its partitions left out of the consumer's assignment so that nothing is fetched before its
// stores are restored; StartRunning assigns them at the last sealed commit. Closing keeps the
// task's RocksDB files on disk for the next owner here; a dirty close drops its buffered writes.
class TaskManager {
 public:
  // `consumer` is the group consumer; `restore_consumer` and `writer` are handed to each task's
  // StateRestorer.
  TaskManager(const Topology& topology, const StreamsConfig& config, int thread_index,
              state::StateResources& resources, rd_kafka_t* consumer, rd_kafka_t* restore_consumer,
              RecordCollectorImpl& collector, TaskCommitter& committer, StateWriter& writer,
              ThreadFailure& failure);

  // From librdkafka's rebalance callback (cooperative-sticky). An assignment creates the new
  // tasks. A revocation first commits every task (aborts them if the assignment was lost, the
  // commit failed or the thread failed), then closes the revoked ones (dirty when lost) and
  // unassigns their partitions. A rebalance error closes the tasks it names as lost. False if
  // the assignment itself failed (the thread fails).
  bool HandleRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);

  // Opens the tasks' states together (TaskState::OpenAll) and creates the tasks, restoring.
  void CreateTasks(const std::vector<TaskId>& ids);
  // <state-dir>/<application-id>/<task>
  std::string StateDirectory(TaskId id) const;
  void CloseTask(TaskId id, bool clean);
  void CloseAll(bool clean);
  // A restored task: takes its positions from the restorer, sends what a crash left unpublished,
  // assigns its inputs at their sealed positions (pausing those already at their stop offset)
  // and makes it queryable.
  void StartRunning(TaskRuntime& rt);

  // The running task consuming `topic`/`partition`, or null (unassigned, or still restoring).
  TaskRuntime* RunningTask(const std::string& topic, int32_t partition);
  // A bounded run: `topic`/`partition` got to its stop offset; the task's position moves there
  // (past control records too) and the partition is paused.
  void ReachStop(const std::string& topic, int32_t partition, int64_t stop);
  bool AnyRestoring() const;
  TaskMap& tasks() { return tasks_; }
  // The group has given this thread its first assignment (maybe empty).
  bool assigned() const { return assigned_; }

  // Runs `query` over the committed stores of `task` if it is running here. Callable from any
  // thread; the task cannot close while the query runs.
  bool Query(const TaskId& task, const std::function<void(const ReadOnlyStores&)>& query) const;
  // Each task's status, the DLQ count and the record cache's figures.
  void AddStatus(ThreadStatus& status);
  // The writes the tasks buffer for the next commit have outgrown the record cache's budget.
  bool CacheFull() const { return cache_ != nullptr && cache_->commit_needed(); }

 private:
  // Commits (or, when `lost`, aborts) every task, closes those of `parts` and unassigns what of
  // them was assigned. False if the unassign failed (the thread fails).
  bool Revoke(rd_kafka_topic_partition_list_t* parts, bool lost);
  // Pauses `parts`, logging what librdkafka refused (`what` says which pause).
  void Pause(rd_kafka_topic_partition_list_t* parts, const char* what);
  // The per-partition errors librdkafka left in `parts`, or "" if none.
  static std::string PartitionErrors(const rd_kafka_topic_partition_list_t* parts);
  const Topology& topology_;
  const StreamsConfig& config_;
  int index_;
  state::StateResources& resources_;
  rd_kafka_t* consumer_;
  rd_kafka_t* restore_consumer_;
  RecordCollectorImpl& collector_;
  TaskCommitter& committer_;
  ThreadFailure& failure_;
  // Writes the restoring tasks' records to their states (the thread's, which outlives tasks_).
  StateWriter& writer_;
  bool assigned_ = false;
  // The thread's record cache, shared by its tasks' stores (null with cache_max_bytes 0).
  // Declared before tasks_, so it outlives them.
  std::unique_ptr<state::RecordCache> cache_;
  TaskMap tasks_;
  std::map<std::pair<std::string, int32_t>, TaskRuntime*> by_partition_;
  // Running tasks that HTTP threads may query; a task leaves it before it closes.
  mutable std::shared_mutex query_mu_;
  std::map<TaskId, state::TaskState*> queryable_;
};

}  // namespace cm::topology
