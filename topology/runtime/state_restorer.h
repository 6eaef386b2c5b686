#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "state/status.h"
#include "state/task_state.h"
#include "topology/runtime/outbox.h"
#include "topology/runtime/stream_task.h"
#include "topology/runtime/streams_config.h"

typedef struct rd_kafka_s rd_kafka_t;
typedef struct rd_kafka_message_s rd_kafka_message_t;

namespace cm::topology {

// Checkpoint keys a task keeps in its TaskState next to its stores.
inline constexpr const char* kCheckpointCommits = "commits";
// The id of the reset (application_reset.h) the local state reflects.
inline constexpr const char* kCheckpointReset = "reset";
// The task's stream time (the largest record timestamp it has processed) as of the commit.
inline constexpr const char* kCheckpointStreamTime = "stream-time";
inline std::string CheckpointChangelogKey(const std::string& store) { return "changelog:" + store; }
inline std::string CheckpointInputKey(const std::string& topic) { return "input:" + topic; }

// The outputs of the task's last sealed commit when they may not all have reached their
// topics (the process died between the seal and the "published" mark).
struct UnpublishedOutputs {
  std::string writer;
  uint64_t seq = 0;
  std::vector<PendingOutput> outputs;
  std::map<std::string, int64_t> scan_from;  // "<topic>/<partition>" -> offset to search from
};

// One partition a restore reads: from its checkpointed offset to the high watermark it had
// when the restore began.
struct RestoreRead {
  std::string topic;
  int32_t partition = 0;
  int64_t from = 0;
  int64_t end = 0;
};

// Brings a task's stores up to date from its changelogs, starting at the offsets its local
// checkpoint reflects, so a restart reads only the tail. Its commit-log partition comes first:
// each sealed commit names the changelog ranges it wrote and the input offsets it consumed, so
// records of a commit that never sealed (a crash mid-commit) are skipped when the broker does
// not filter aborted transactions itself. A reset marker (`cmstream replay`) moves where each
// log is read from: the task then restores nothing written before the reset, and discards
// local state that predates it.
//
// The restorer does not read: the ChangelogReader reads the partitions of every restoring task
// of a thread together (Kafka Streams' StoreChangelogReader) and hands each record here. First
// the commit log (CommitLogReads), and once that is done the changelogs (ChangelogReads).
class StateRestorer {
 public:
  // `consumer` answers the watermark and reset-marker queries of Prepare.
  StateRestorer(rd_kafka_t* consumer, const StreamsConfig& config, const Topology& topology,
                TaskId task, state::TaskState& state);
  ~StateRestorer();

  // Reads the checkpoint, the reset marker and the logs' watermarks. kAborted: a log is behind
  // the local state (the broker lost its topics); the caller wipes the local state and starts
  // again. kCorruption: a log lost records the state depends on.
  [[nodiscard]] state::Status Prepare();
  bool prepared() const { return prepared_; }

  // What is left to read of the commit log; empty when it is read.
  std::vector<RestoreRead> CommitLogReads() const;
  // What is left to read of the changelogs; only once the commit log is read.
  std::vector<RestoreRead> ChangelogReads() const;
  // A record of one of the partitions above.
  [[nodiscard]] state::Status Apply(const rd_kafka_message_t& m);
  // The end-of-partition event of one of them: nothing more to read there.
  [[nodiscard]] state::Status EndOfPartition(const std::string& topic);
  // True when every log is read; then Finish writes the checkpoint.
  bool read_all() const;
  [[nodiscard]] state::Status Finish();

  uint64_t restored_records() const { return restored_; }
  uint64_t total_records() const { return total_; }
  // The input offsets the restored state reflects (empty for a task that never committed).
  const std::map<std::string, int64_t>& input_positions() const { return inputs_; }
  // Per source topic: the position reached before the latest reset (ResetMarker::published);
  // outputs of records below it are not sent again.
  const std::map<std::string, int64_t>& published_positions() const { return published_; }
  const std::map<std::string, int64_t>& changelog_positions() const { return changelog_positions_; }
  int64_t commit_position() const { return commit_position_; }
  // The stream time of the restored state (of the latest seal); INT64_MIN when none is known.
  int64_t stream_time() const { return stream_time_; }
  const std::optional<UnpublishedOutputs>& unpublished() const { return unpublished_; }

 private:
  struct Phase {
    std::string topic;
    std::string store;  // empty for the commit log
    int64_t from = 0;
    int64_t high = 0;
    int64_t low = 0;
    int64_t next = 0;  // the offset after the last record applied
    bool done = false;
    std::vector<state::StoreChange> batch;  // changes read, not yet written
  };
  Phase* FindPhase(std::string_view topic);
  state::Status EndPhase(Phase& phase);
  state::Status ApplyCommitRecord(std::string_view type, std::string_view value, int64_t offset);
  state::Status Flush(Phase& phase, int64_t next_offset);
  bool Sealed(const std::string& store, int64_t offset);

  rd_kafka_t* consumer_;
  const StreamsConfig& config_;
  const Topology& topology_;
  TaskId task_;
  state::TaskState& state_;
  bool prepared_ = false;
  std::vector<Phase> phases_;  // the commit log first, then one per logged store
  std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> sealed_ranges_;
  std::map<std::string, size_t> range_cursor_;
  std::map<std::string, int64_t> inputs_;
  std::map<std::string, int64_t> published_;
  std::map<std::string, int64_t> changelog_positions_;
  int64_t commit_position_ = 0;
  int64_t stream_time_ = INT64_MIN;
  std::map<int64_t, std::string> outbox_records_;  // by commit-log offset, since the last seal
  std::vector<std::string> unpublished_outbox_;    // the last seal's outbox, decoded at the end
  std::optional<UnpublishedOutputs> unpublished_;
  uint64_t restored_ = 0;
  uint64_t skipped_ = 0;
  uint64_t total_ = 0;
  std::chrono::steady_clock::time_point started_;
  std::string reset_id_;  // of the reset marker honoured, if any
};

}  // namespace cm::topology
