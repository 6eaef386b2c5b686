#pragma once

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "topology/processor/topology.h"
#include "topology/runtime/outbox.h"
#include "topology/runtime/record_collector_impl.h"
#include "topology/runtime/state_restorer.h"
#include "topology/runtime/state_writer.h"
#include "topology/runtime/stream_producer.h"
#include "topology/runtime/stream_thread.h"
#include "topology/runtime/streams_config.h"
#include "topology/runtime/task_runtime.h"
#include "topology/runtime/thread_failure.h"

namespace cm::topology {

// Commits and aborts a stream thread's tasks by cmstream's sealed commit protocol (README,
// "Exactly-once, and why there is a commit topic"):
//   1. the changelog records of every dirty task, and in outbox mode its outputs (packed into
//      its commit-log partition), are produced and acknowledged;
//   2. one seal per task in its commit-log partition names the changelog ranges, the outbox
//      range and the input offsets: once it is acknowledged, the commit has happened;
//   3. under exactly-once the Kafka transaction commits;
//   4. the store writes and the checkpoint go to RocksDB in one WriteBatch per task, all tasks'
//      handed to the state writer's threads at once; this thread commits the group offsets (6)
//      meanwhile and waits for the writes before 5;
//   5. in outbox mode the outputs are published; the seal's "published" mark goes out with the
//      next commit (ProduceMarks);
//   6. group offsets are committed, for lag monitoring only.
// A crash before 2 leaves unsealed records that restores skip; after 2, the log is the truth.
// The tasks are the caller's (TaskManager); each call says which.
class TaskCommitter {
 public:
  // `writer_id` names this incarnation of the thread in seals and output ids. `writer` runs the
  // tasks' state writes. `consumer` is the group consumer (seeks, group offsets);
  // `restore_consumer` scans partitions for Republish.
  TaskCommitter(const Topology& topology, const StreamsConfig& config, int thread_index,
                std::string writer_id, StreamProducer& producer, RecordCollectorImpl& collector,
                StateWriter& writer, rd_kafka_t* consumer, rd_kafka_t* restore_consumer,
                ThreadFailure& failure);

  // One more record processed since the last commit.
  void RecordProcessed() { ++records_since_commit_; }
  // The commit interval has passed since the last commit, or commit_max_pending records wait.
  bool CommitDue() const;
  // How long until the commit interval has passed (zero once it has).
  std::chrono::milliseconds UntilCommitDue() const;
  // Whether records were processed since the last commit (they make a commit worth waking for).
  bool ProcessedSinceCommit() const { return records_since_commit_ > 0; }

  // Commits every running task with something to commit. False if the commit did not happen:
  // then its tasks have been aborted (AbortAll), or the thread failed.
  bool CommitAll(TaskMap& tasks);
  // Drops everything since the last commit: the open transaction (or queued records), buffered
  // store writes and outboxes; running tasks seek back to their sealed input offsets.
  void AbortAll(TaskMap& tasks, const std::string& reason);
  // After a crash between a seal and its "published" mark: finds which of the seal's outputs
  // reached their partitions and sends the rest, in a transaction of their own.
  void Republish(TaskRuntime& rt, const UnpublishedOutputs& unpublished);

  // Drops the task's unwritten "published" mark (the task closes): whoever restores it next
  // scans for the seal's outputs instead.
  void ForgetMark(const TaskId& task) { unwritten_marks_.erase(task); }

  // Commits, aborted commits and the commit latency histogram.
  void AddStatus(ThreadStatus& status) const;

 private:
  // One seal's outputs to publish, with the partition of each; `already` lists the indexes a
  // republish found delivered.
  struct SealedOutputs {
    TaskRuntime* rt;
    std::string writer;
    uint64_t seq;
    const std::vector<PendingOutput>* outputs;
    const std::vector<int32_t>* partitions;
    std::set<size_t> already;
  };
  // Sends sealed outputs to their topics, each tagged <writer>/<seq>/<task>/<index>; once all
  // are acknowledged, each seal's "published" mark waits for the next commit (ProduceMarks).
  void Publish(const std::vector<SealedOutputs>& seals);
  // Produces the waiting marks into the commit logs of the tasks still running here; the caller
  // flushes. Without its mark (a crash came first) a restart scans for the seal's outputs, finds
  // them all and sends none again.
  void ProduceMarks(TaskMap& tasks);

  const Topology& topology_;
  const StreamsConfig& config_;
  int index_;
  std::string writer_id_;
  StreamProducer& producer_;
  RecordCollectorImpl& collector_;
  StateWriter& writer_;
  rd_kafka_t* consumer_;
  rd_kafka_t* restore_consumer_;
  ThreadFailure& failure_;
  uint64_t commit_seq_ = 0;
  std::map<TaskId, std::string> unwritten_marks_;  // "published" marks for the next commit
  std::chrono::steady_clock::time_point last_commit_ = std::chrono::steady_clock::now();
  uint64_t records_since_commit_ = 0;
  uint64_t commits_ = 0, aborted_ = 0;
  double commit_seconds_sum_ = 0;
  std::vector<uint64_t> commit_buckets_ = std::vector<uint64_t>(std::size(kCommitLatencyBounds), 0);
};

}  // namespace cm::topology
