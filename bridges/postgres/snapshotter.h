#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "bridges/postgres/snapshot_writer.h"
#include "topology/processor/snapshot_schema.h"
#include "topology/runtime/state_snapshot_listener.h"

namespace cm::postgres {

struct SnapshotterOptions {
  std::string database_url;
  std::string schema = "public";
  std::chrono::milliseconds interval{30'000};  // between snapshot rounds
  // First retry after a failed round; doubles up to `interval`.
  std::chrono::milliseconds min_backoff{500};
  size_t copy_chunk_bytes = 1 << 20;
};

struct SnapshotterMetrics {
  uint64_t rows_written = 0;     // rows upserted or deleted
  uint64_t task_snapshots = 0;   // committed task transactions
  uint64_t full_snapshots = 0;   // of which full (task start, offsets differed)
  uint64_t failures = 0;         // failed rounds (Postgres unreachable, SQL errors)
  int64_t last_success_ms = 0;   // wall clock of the last round that wrote everything
  uint64_t pending_changes = 0;  // coalesced changes waiting for the next round
};

// Mirrors the tasks' committed stores into Postgres (DESIGN.md §8). The stream threads hand
// over each commit's changes (StateSnapshotListener); they are coalesced per task, latest value
// per key, and every `interval` a thread of its own writes each task's changes in one
// transaction (SnapshotWriter), with the changelog offsets they reflect. When a task starts,
// the offsets Postgres holds for it are compared with the task's; if they differ (a crash
// after a commit and before its snapshot, another instance, no snapshot yet) the task's stores
// are read in full and replace its rows. A failed round keeps the changes (bounded by the
// number of distinct keys), is logged, and is retried with backoff; processing never waits.
class Snapshotter final : public topology::StateSnapshotListener {
 public:
  Snapshotter(topology::SnapshotSchema schema, SnapshotterOptions options);
  ~Snapshotter() override;
  Snapshotter(const Snapshotter&) = delete;
  Snapshotter& operator=(const Snapshotter&) = delete;

  void Start();
  // Writes what is pending one last time (best effort), then stops the thread. Call after the
  // streams have stopped, so that their last commits are included.
  void Stop();

  SnapshotterMetrics Metrics() const;
  // Prometheus text: cmstream_snapshot_*.
  std::string RenderMetrics() const;

  bool WantsStore(const std::string& store) const override;
  void OnTaskRunning(const topology::TaskId& task, const ChangelogOffsets& offsets,
                     StoresReader reader) override;
  void OnTaskCommitted(const topology::TaskId& task, std::vector<Change> changes,
                       const ChangelogOffsets& offsets) override;
  void OnTaskClosed(const topology::TaskId& task) override;

 private:
  enum class Phase {
    kCheck,        // compare the offsets Postgres holds with the task's start offsets
    kFull,         // read the stores in full and replace the task's rows
    kIncremental,  // Postgres holds `base`; write the changes since
  };
  struct TaskEntry {
    Phase phase = Phase::kCheck;
    ChangelogOffsets start;   // when the task started running here
    ChangelogOffsets base;    // what Postgres holds (kIncremental)
    ChangelogOffsets latest;  // the last commit's
    StoreChanges pending;
    size_t pending_count = 0;
    StoresReader reader;  // empty once closed
    bool closed = false;
    uint64_t generation = 0;  // a new one each time the task starts running here
  };

  void Loop();
  // One round over every task; false when a write failed.
  bool Round();
  state::Status SnapshotTask(const std::string& task);
  // Puts the changes of a failed write back under those that arrived since (newer values win).
  static void MergeBack(TaskEntry& entry, StoreChanges& failed);

  topology::SnapshotSchema schema_;
  SnapshotterOptions options_;
  SnapshotWriter writer_;  // used by the snapshot thread only

  mutable std::mutex mu_;  // guards tasks_ and metrics_
  std::map<std::string, TaskEntry> tasks_;
  uint64_t generations_ = 0;
  SnapshotterMetrics metrics_;
  // Held while a StoresReader runs, and by OnTaskClosed: a reader is never called after its
  // task closed.
  std::mutex read_mu_;

  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace cm::postgres
