#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "topology/kafka/consumer_batch.h"
#include "topology/kafka/kafka_client.h"
#include "topology/runtime/streams_config.h"
#include "topology/runtime/task_manager.h"
#include "topology/runtime/thread_failure.h"

namespace cm::topology {

// Restores all restoring tasks of a stream thread together (Kafka Streams'
// StoreChangelogReader): one consumer of its own is assigned the partitions every task's
// StateRestorer still has to read, so start-up with many tasks takes about as long as reading
// their logs once, not one round trip per partition after another. The commit logs and the
// changelogs are read together; a changelog whose restorer holds too many records no seal has
// decided yet is paused until its commit log catches up (and one that waits when it is
// assigned is held out of the assignment until then). A task starts running as soon as its own
// logs are read.
class ChangelogReader {
 public:
  // A consumer for reading partitions by assignment: not in the group, read_committed,
  // partition EOF reported, short fetch waits. The stream thread has one for the restorers'
  // queries and the committer's republish scans; the reader has its own.
  static KafkaHandle NewRestoreConsumer(const StreamsConfig& config, const std::string& client_id);

  ChangelogReader(const StreamsConfig& config, const std::string& client_id, TaskManager& tasks,
                  ThreadFailure& failure);
  ~ChangelogReader();
  ChangelogReader(const ChangelogReader&) = delete;
  ChangelogReader& operator=(const ChangelogReader&) = delete;

  // Restores for about 200 ms, so the stream thread keeps polling its group consumer. A task
  // whose local state describes a log the broker no longer has (an embedded broker restarted)
  // is wiped and created again. Once no task restores, it gives up its partitions and flushes
  // the restored tasks.
  void RestoreStep();
  // True while RestoreStep has work besides restoring tasks (which the caller already looked
  // for): restored ones wait for their flush, or partitions are still assigned (the last
  // restoring task may have been revoked instead of finishing).
  bool HasLeftovers() const { return !restored_.empty() || !assigned_.empty(); }

 private:
  using PartitionKey = std::pair<std::string, int32_t>;
  // Each false return means: stop this step (the task map changed, or the thread failed).
  bool PrepareNew();
  bool StartRestored();
  // Flushes the states of the tasks restored since the last call: a restored state is the
  // costliest to build again, so a crash from then on restores only what follows. Once no task
  // restores, so that the flushes of hundreds of tasks restored together do not take the CPU
  // their restores still need.
  void FlushRestored();
  bool Assign();
  bool Poll(std::chrono::steady_clock::time_point deadline);
  enum class Applied { kNext, kEnded, kFailed, kReassign };
  // The partition of the last message applied in one Poll, and its entry in assigned_ (or
  // end()): records come in runs from one partition.
  struct Run {
    const rd_kafka_topic_t* topic_handle = nullptr;
    int32_t partition = -1;
    std::string topic;
    std::map<PartitionKey, TaskId>::iterator assigned;
  };
  // Hands one message to its task's restorer. kEnded: a partition was read to its end;
  // kReassign: a restorer rewound its commit log.
  Applied Apply(const rd_kafka_message_t& m, Run& run);
  void Unassign();
  // Pauses the partition unless it is paused already.
  void Pause(const PartitionKey& key, const TaskId& task);
  // Resumes the task's paused changelogs whose restorer no longer waits.
  void ResumeDecided(const TaskId& task, StateRestorer& restorer);
  // Adds the task's held changelogs whose restorer no longer waits to the assignment.
  bool AssignDecided(const TaskId& task, StateRestorer& restorer);
  void ResumeAll();
  void Resume(rd_kafka_topic_partition_list_t* list);

  TaskManager& tasks_;
  ThreadFailure& failure_;
  KafkaHandle consumer_;
  TopicHandles topics_;  // of the topics ever assigned: see TopicHandles
  ConsumerBatch batch_;
  std::map<PartitionKey, TaskId> assigned_;
  std::map<TaskId, std::vector<PartitionKey>> paused_;
  // Wanted partitions left out of the assignment while their restorer waits, and the offset to
  // read them from. Pausing one right after the assignment would race librdkafka's start of its
  // fetch: each pause or resume takes a new version of the partition, and a fetch start that
  // the main thread numbered earlier but queued later is dropped as outdated. The partition is
  // then never fetched and its task never finishes restoring (seen under load).
  std::map<TaskId, std::vector<std::pair<PartitionKey, int64_t>>> held_;
  bool reassign_ = false;         // a restorer was prepared or rewound since the last assignment
  std::vector<TaskId> restored_;  // running since their restores, not flushed since
};

}  // namespace cm::topology
