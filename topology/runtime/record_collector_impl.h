#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "topology/processor/record.h"
#include "topology/processor/topology.h"
#include "topology/runtime/record_collector.h"
#include "topology/runtime/stream_producer.h"
#include "topology/runtime/streams_config.h"
#include "topology/runtime/task_runtime.h"
#include "topology/runtime/thread_failure.h"

namespace cm::topology {

// Where the outputs of a stream thread's tasks go (sink, repartition and DLQ records). Under
// exactly-once on a broker that does not filter aborted transactions (outbox mode) they wait in
// the task's outbox until its next commit is sealed; otherwise they go straight to Kafka, inside
// the open transaction. A bounded run (output_topic_prefix) redirects all but the application's
// internal topics. Partitions are Kafka's default partitioner, computed here so that outputs
// land where a recovery looks for them.
class RecordCollectorImpl {
 public:
  // `consumer` is the thread's main consumer, whose cached high watermarks tell a task whether
  // it has caught up with an input (RecordCollector::CaughtUp); it must outlive this object.
  RecordCollectorImpl(const Topology& topology, const StreamsConfig& config,
                      StreamProducer& producer, ThreadFailure& failure, rd_kafka_t* consumer);

  // The RecordCollector a task's processors send through.
  std::unique_ptr<RecordCollector> ForTask(TaskRuntime& task);

  // Brackets the processing of one input record. An input whose outputs were sent before a
  // reset (`cmstream replay`) — below the task's published_until, or marked kReplayedHeader by
  // the upstream task — makes Send drop its outputs to external topics (counted in
  // replayed_outputs_dropped) and mark those to internal topics, until EndInput.
  void BeginInput(TaskRuntime& task, const Record& input);
  void EndInput(TaskRuntime& task) { task.replaying = false; }

  void Send(TaskRuntime& task, const std::string& topic, const Record& record);
  // RecordCollector::Reroute for `task`.
  void Reroute(TaskRuntime& task, const Record& record);
  // The partition of `topic` that Kafka's default partitioner picks for `key`. None when the
  // topic's partition count cannot be learnt: the thread has then failed (Fatal throws, or
  // inside a rebalance callback defers), and the caller stops what it was doing.
  [[nodiscard]] std::optional<int32_t> PartitionFor(const std::string& topic,
                                                    const std::string& key);

  uint64_t replayed_outputs_dropped() const { return replayed_outputs_dropped_; }
  // Per source topic: misrouted records re-produced to their partition, and those a bounded run
  // skipped.
  const std::map<std::string, uint64_t>& rerouted() const { return rerouted_; }
  const std::map<std::string, uint64_t>& misrouted_skipped() const { return misrouted_skipped_; }

 private:
  // Where an output to `topic` goes (a bounded run redirects all but internal topics).
  const std::string& OutputTopic(const std::string& topic);

  const StreamsConfig& config_;
  StreamProducer& producer_;
  ThreadFailure& failure_;
  rd_kafka_t* consumer_;
  bool outbox_mode_ = false;
  std::set<std::string> internal_topics_;
  std::map<std::string, std::string> output_topics_;
  std::map<std::string, int32_t> partition_counts_;
  uint64_t replayed_outputs_dropped_ = 0;
  std::map<std::string, uint64_t> rerouted_;
  std::map<std::string, uint64_t> misrouted_skipped_;
};

}  // namespace cm::topology
