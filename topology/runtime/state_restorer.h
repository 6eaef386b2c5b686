#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/status.h"
#include "state/task_state.h"
#include "topology/kafka/kafka_client.h"
#include "topology/runtime/outbox.h"
#include "topology/runtime/reset_marker.h"
#include "topology/runtime/state_writer.h"
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
// The task's changelog gaps (below), when known.
inline constexpr const char* kCheckpointGaps = "gaps";

// Per logged store, the changelog offset ranges [begin, end) below the task's changelog
// position that no seal covers: records of commits cut off by a crash or aborted. Every seal
// carries the list with each store's position ("gaps" and "ends"), so one seal decides every
// changelog record before it and a restore need not read the commit log from its start.
using ChangelogGaps = std::map<std::string, std::vector<std::pair<int64_t, int64_t>>>;
// Adds [begin, end) to the store's gaps, joining it to the last one when they touch. Gaps are
// added in offset order.
void AddGap(ChangelogGaps& gaps, const std::string& store, int64_t begin, int64_t end);
nlohmann::json GapsToJson(const ChangelogGaps& gaps);

// The outputs of the task's last sealed commit when they may not all have reached their
// topics (the process died between the seal and the "published" mark).
struct UnpublishedOutputs {
  std::string writer;
  uint64_t seq = 0;
  std::vector<PendingOutput> outputs;
  std::map<std::string, int64_t> scan_from;  // "<topic>/<partition>" -> offset to search from
};

// One partition a restore still reads, and where it goes on from.
struct RestoreRead {
  std::string topic;
  int32_t partition = 0;
  int64_t from = 0;
};

// What StateRestorer::Prepare needs from the broker: the application's latest reset marker and
// the watermarks of the logs. The ChangelogReader asks for those of all new restorers at once.
struct RestoreOffsets {
  std::optional<ResetMarker> reset;
  std::map<TopicPartition, std::pair<int64_t, int64_t>> watermarks;  // -> {low, high}
};

// Brings a task's stores up to date from its changelogs, starting at the offsets its local
// checkpoint reflects, so a restart reads only the tail. It reads its commit-log partition too:
// each sealed commit names the changelog ranges it wrote and the input offsets it consumed, so
// records of a commit that never sealed (a crash mid-commit) are skipped when the broker does
// not filter aborted transactions itself. A reset marker (`cmstream replay`) moves where each
// log is read from: the task then restores nothing written before the reset, and discards
// local state that predates it.
//
// The restorer does not read: the ChangelogReader reads the partitions of every restoring task
// of a thread together (Kafka Streams' StoreChangelogReader) and hands each record here, the
// commit log and the changelogs at once. A changelog record is written once a seal decides it:
// one that names it, or a later one that does not (its commit never sealed). Until then it
// waits in memory, up to `restore_undecided_bytes` per changelog (Waiting() says when the
// reader should pause it); the end of the commit log decides every record left.
class StateRestorer {
 public:
  // `consumer` answers the watermark and reset-marker queries of QueryOffsets; `writer` writes
  // the decided records to `state`. The destructor waits for those writes.
  StateRestorer(rd_kafka_t* consumer, const StreamsConfig& config, const Topology& topology,
                TaskId task, state::TaskState& state, StateWriter& writer);
  ~StateRestorer();
  StateRestorer(const StateRestorer&) = delete;
  StateRestorer& operator=(const StateRestorer&) = delete;

  // The partitions of its logs: the commit log's and the changelogs'.
  std::vector<TopicPartition> Logs() const;
  // The reset marker and the watermarks of `logs` (the Logs() of any restorers of this
  // application): three requests however many.
  [[nodiscard]] state::Result<RestoreOffsets> QueryOffsets(
      const std::vector<TopicPartition>& logs) const;
  // Reads the checkpoint and plans what to read from `offsets`, which hold the watermarks of
  // Logs(). kAborted: a log is behind the local state (the broker lost its topics); the caller
  // wipes the local state and starts again. kCorruption: a log lost records the state depends on.
  [[nodiscard]] state::Status Prepare(const RestoreOffsets& offsets);
  bool prepared() const { return prepared_; }

  // What is left to read of the commit log and of the changelogs.
  std::vector<RestoreRead> Reads() const;
  // True while `topic` (a changelog) holds as many undecided records as it may: its reading
  // should pause until a seal or the end of the commit log decides them.
  bool Waiting(std::string_view topic) const;
  // True once nothing more is to be read from `topic`.
  bool ReadToEnd(std::string_view topic) const;
  // A record of one of the partitions above.
  [[nodiscard]] state::Status Apply(const rd_kafka_message_t& m);
  // The end-of-partition event of one of them: nothing more to read there.
  [[nodiscard]] state::Status EndOfPartition(const std::string& topic);
  // True when every log is read; then Finish waits for the writes and writes the checkpoint
  // (not flushed: the caller flushes the state when it can).
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
  // The gaps below changelog_positions(); none when the log's seals predate gap lists and the
  // local state does not know them (its seals then carry no list).
  const std::optional<ChangelogGaps>& gaps() const { return gaps_; }
  // True once after the commit log must be read again from an earlier offset (Reads() says
  // where): the reader assigns it anew.
  bool TakeRewind() { return std::exchange(rewind_, false); }

 private:
  enum class Seal { kSealed, kUnsealed, kUnknown };
  // The commit log's topic, then each logged store's changelog topic and store name.
  std::vector<std::pair<std::string, std::string>> LogTopics() const;
  struct Undecided {
    int64_t offset = 0;
    state::StoreChange change;
  };
  struct Phase {
    std::string topic;
    std::string store;  // empty for the commit log
    int64_t from = 0;
    int64_t high = 0;
    int64_t low = 0;
    int64_t next = 0;                       // the offset after the last record read
    uint64_t read = 0;                      // records read from `from` on
    bool read_to_end = false;               // nothing more to read; done once nothing is undecided
    bool done = false;                      // every record read is written or skipped
    std::vector<state::StoreChange> batch;  // sealed changes, not yet written
    std::deque<Undecided> undecided;        // read after `batch`, no seal read decides them yet
    size_t undecided_bytes = 0;
  };
  Phase* FindPhase(std::string_view topic);
  const Phase* FindPhase(std::string_view topic) const;
  bool Waiting(const Phase& phase) const;
  state::Status EndPhase(Phase& phase);
  state::Status EndIfDecided(Phase& phase);
  state::Status ApplyCommitRecord(std::string_view type, std::string_view value, int64_t offset);
  state::Status AddSealed(Phase& phase, state::StoreChange change);
  // Writes or skips the undecided records that the seals read so far decide.
  state::Status Decide(Phase& phase);
  state::Status Flush(Phase& phase);
  Seal SealOf(const std::string& store, int64_t offset);
  bool InGap(const std::string& store, int64_t offset);
  // A changelog record whose commit never sealed: not written, and a gap.
  void SkipUnsealed(const std::string& store, int64_t offset);
  // The commit log's tail did not decide everything: read it again from `offset`.
  void RewindCommitLog(int64_t offset);

  rd_kafka_t* consumer_;
  const StreamsConfig& config_;
  const Topology& topology_;
  TaskId task_;
  state::TaskState& state_;
  StateWriter& writer_;
  StateWriter::Lane lane_;  // this task's writes in `writer_`
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
  uint64_t waits_ = 0;  // times a changelog began to wait for its commit log
  uint64_t total_ = 0;
  std::chrono::steady_clock::time_point started_;
  std::string reset_id_;          // of the reset marker honoured, if any
  int64_t commit_from_ = 0;       // where the commit log is read from when its tail is not enough
  bool tail_ = false;             // the commit log is read from its tail (restore_commit_tail)
  bool rewind_ = false;           // see TakeRewind
  int64_t unpublished_from_ = 0;  // the first outbox record of unpublished_
  // The first seal read that carries gaps: below its ends, a record is sealed unless in gaps_.
  std::optional<std::map<std::string, int64_t>> base_ends_;
  std::optional<ChangelogGaps> gaps_;
  std::map<std::string, size_t> gap_cursor_;
};

}  // namespace cm::topology
