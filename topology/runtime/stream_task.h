#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "state/record_cache.h"
#include "state/task_state.h"
#include "topology/processor/processor.h"
#include "topology/processor/topology.h"
#include "topology/runtime/record_collector.h"

namespace cm::topology {

// A processor's exception on its way up to the task, with the node that threw.
class ProcessorFailure : public std::runtime_error {
 public:
  ProcessorFailure(std::string node, const std::string& what)
      : std::runtime_error(what), node_(std::move(node)) {}
  const std::string& node() const { return node_; }

 private:
  std::string node_;
};

// A task is one partition of one sub-topology ("0_3" in Kafka Streams' notation).
struct TaskId {
  int subtopology = 0;
  int32_t partition = 0;

  std::string ToString() const {
    return std::to_string(subtopology) + "_" + std::to_string(partition);
  }
  auto operator<=>(const TaskId&) const = default;
};

// Runs the processors of one task over its stores. Knows nothing of Kafka: records come in
// through Process, go out through a RecordCollector.
class StreamTask {
 public:
  // `cache` (null: none) is the thread's record cache, which the task's deferred records are
  // charged to as buffered bytes; it must outlive the task.
  StreamTask(const Topology& topology, TaskId id, std::unique_ptr<state::TaskState> state,
             RecordCollector& collector, std::string dlq_topic,
             state::RecordCache* cache = nullptr);
  ~StreamTask();
  StreamTask(const StreamTask&) = delete;
  StreamTask& operator=(const StreamTask&) = delete;

  // Creates and initialises the processors; call once the stores are restored. `stream_time_ms`
  // is the task's stream time as of its restored state (INT64_MIN: none yet).
  void Init(int64_t wall_clock_ms, int64_t stream_time_ms = INT64_MIN);
  // Feeds one record from a source topic. A processor that throws gets its record sent to the
  // dead-letter topic; the task goes on. A state::StoreFailure is not the record's fault: it
  // leaves Process (and PunctuateWallClock) untouched, with the record's writes still buffered,
  // and the caller fails the task without committing them.
  void Process(const Record& record);
  // Fires wall-clock punctuators that are due.
  void PunctuateWallClock(int64_t wall_clock_ms);
  // When PunctuateWallClock has a punctuator to fire next (INT64_MAX: none scheduled).
  int64_t NextWallClockPunctuation() const;
  // Forwards the records processors deferred to the commit (ProcessorContext::ForwardAtCommit),
  // the latest per key and node, parents' first; the engine calls it before it seals the
  // task's commit, so what they cause downstream is part of that commit. A child that throws
  // sends the deferred record to the DLQ, as Process does; a state::StoreFailure fails the task.
  void ForwardDeferred();
  // Drops them: the commit was aborted, and their inputs will be processed again.
  void DropDeferred();
  bool HasDeferred() const { return !deferred_.empty(); }
  void Close();

  const TaskId& id() const { return id_; }
  const std::string& name() const { return name_; }
  state::TaskState& state() { return *state_; }
  int64_t stream_time() const { return stream_time_; }
  uint64_t processed() const { return processed_; }
  uint64_t dropped_to_dlq() const { return dlq_count_; }

 private:
  class NodeContext;
  struct Punctuation {
    std::chrono::milliseconds interval;
    PunctuationType type;
    Punctuator punctuator;
    int64_t next_ms;
    std::string node;
  };
  friend class NodeContext;
  // One node's deferred records, in the order their keys were first deferred.
  struct DeferredRecord {
    Record record;
    bool replaying;  // every input that deferred it was a replay
  };
  struct Deferred {
    std::vector<DeferredRecord> records;
    std::unordered_map<std::string, size_t> index;  // key -> records
  };
  // How to undo one ForwardAtCommit of the record being processed, should it fail: the slot it
  // filled and what was there (nullopt: the key was new).
  struct DeferredUndo {
    std::map<std::string, Deferred>::iterator node;
    size_t slot;
    std::optional<DeferredRecord> previous;
  };
  // Delivers `record` to `children` as one unit: a processor that throws undoes its store writes
  // and deferred forwards, and the record goes to the DLQ.
  void DeliverAsOne(const std::vector<std::string>& children, const Record& record);
  void Defer(const std::string& node, const Record& record);
  void UndoDeferred();
  // What a deferred record holds in memory, as the record cache charges a buffered write.
  static int64_t DeferredCharge(const Record& record);
  // Deferred records grew or shrank by delta bytes: tells the record cache, whose budget they
  // share with the stores' buffered writes (over it, the thread commits early).
  void ChargeDeferred(int64_t delta);

  // Whether `record` belongs to another partition; if so it has been re-produced there (or
  // skipped, or dead-lettered) and must not be processed here.
  bool Misrouted(const Node& source, const Record& record);
  void Deliver(const std::string& node, const Record& record);
  void ProcessAt(const std::string& node, const Record& record);
  void SendToDlq(const Record& record, std::string_view reason, const std::string& node);
  void PunctuateStreamTime();
  void RunPunctuator(const Punctuator& punctuator, const std::string& node, int64_t timestamp_ms);

  const Topology& topology_;
  const SubTopology& subtopology_;
  TaskId id_;
  std::string name_;
  std::unique_ptr<state::TaskState> state_;
  RecordCollector& collector_;
  std::string dlq_topic_;
  std::map<std::string, std::unique_ptr<Processor>> processors_;
  std::map<std::string, std::unique_ptr<NodeContext>> contexts_;
  std::vector<Punctuation> punctuations_;
  std::map<std::string, Deferred> deferred_;  // by node; entries stay put while undo refers to them
  std::vector<DeferredUndo> deferred_undo_;   // while a record is processed
  state::RecordCache* cache_;
  int64_t deferred_bytes_ = 0;
  bool processing_record_ = false;
  int64_t stream_time_ = INT64_MIN;
  int64_t init_wall_clock_ms_ = 0;
  bool initialized_ = false;
  uint64_t processed_ = 0;
  uint64_t dlq_count_ = 0;
};

}  // namespace cm::topology
