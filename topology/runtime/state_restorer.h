#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "state/status.h"
#include "state/task_state.h"
#include "topology/runtime/outbox.h"
#include "topology/runtime/stream_task.h"
#include "topology/runtime/streams_config.h"

typedef struct rd_kafka_s rd_kafka_t;

namespace cm::topology {
class PartitionReader;
}

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

// Brings a task's stores up to date from its changelogs, starting at the offsets its local
// checkpoint reflects, so a restart reads only the tail. Reads the task's commit-log partition
// first: each sealed commit names the changelog ranges it wrote and the input offsets it
// consumed, so records of a commit that never sealed (a crash mid-commit) are skipped when the
// broker does not filter aborted transactions itself. A reset marker (`cmstream replay`) moves
// where each log is read from: the task then restores nothing written before the reset, and
// discards local state that predates it. Works in slices so the stream thread can
// keep polling its group consumer.
class StateRestorer {
 public:
  StateRestorer(rd_kafka_t* consumer, const StreamsConfig& config, const Topology& topology,
                TaskId task, state::TaskState& state);
  ~StateRestorer();

  // Restores for about `budget`. True when done. kAborted: the log is behind the local state
  // (the broker lost its topics); the caller wipes the local state and starts again.
  state::Result<bool> Step(std::chrono::milliseconds budget);

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
  };
  state::Status Prepare();
  state::Status ApplyCommitRecord(std::string_view type, std::string_view value, int64_t offset);
  state::Status Flush(const Phase& phase, int64_t next_offset);
  bool Sealed(const std::string& store, int64_t offset);

  rd_kafka_t* consumer_;
  const StreamsConfig& config_;
  const Topology& topology_;
  TaskId task_;
  state::TaskState& state_;
  bool prepared_ = false;
  std::vector<Phase> phases_;
  size_t phase_ = 0;
  std::unique_ptr<PartitionReader> reader_;  // of the current phase's partition
  std::vector<state::StoreChange> batch_;
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
