#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/key_value_store.h"
#include "state/record_cache.h"
#include "state/status.h"
#include "state/store_spec.h"
#include "state/timer_store.h"
#include "state/window_store.h"

namespace cm::state {

// Process-wide RocksDB memory: one block cache and one write-buffer manager shared by every
// task's database, so memory stays bounded however many tasks an instance owns.
class StateResources {
 public:
  explicit StateResources(size_t memory_bytes);
  ~StateResources();
  StateResources(const StateResources&) = delete;
  StateResources& operator=(const StateResources&) = delete;

  size_t memory_bytes() const { return memory_bytes_; }
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  size_t memory_bytes_;
  std::unique_ptr<Impl> impl_;
};

// One change to a store as it travels through the changelog: the store's raw key and value,
// nullopt for a delete (a tombstone in the changelog).
struct StoreChange {
  std::string key;
  std::optional<std::string> value;
};

// A buffered change as a commit visits it: views of the store's own buffer, valid during the
// visit only, so that a commit producing every change to a changelog copies none of them.
struct PendingChange {
  const std::string& key;
  const std::optional<std::string>& value;

  StoreChange Copy() const { return {key, value}; }
};

using CheckpointEntries = std::map<std::string, std::string>;

// Writes after which a task's database flushes its memtables: the most a crash makes a restore
// read back per task (Kafka Streams checkpoints every 10,000 records under exactly-once).
inline constexpr uint64_t kFlushChanges = 10'000;

struct TaskStateOptions {
  std::string directory;                // <state-dir>/<app-id>/<task>
  std::vector<StoreSpec> stores;        // a key range each
  StateResources* resources = nullptr;  // shared cache and write buffers; null = private
  RecordCache* cache = nullptr;         // the stream thread's record cache; null = none
};

// The state of one task: one RocksDB instance (one column family) holding every store of the
// task, each in a key range of its own, and the task's checkpoint. Store writes are buffered in
// memory (reads see them) until Commit writes them, together with checkpoint entries such as
// changelog offsets, in one WriteBatch. The database runs without its write-ahead log, as Kafka
// Streams runs RocksDB: the changelog is the log. A flush writes every store and the checkpoint at
// once, so after a crash the stores and the checkpoint are those of the last flush, consistent with
// each other, and the restore replays the changelogs from that checkpoint. A task's database
// flushes once kFlushChanges writes have accumulated (restored ones included), after a restore
// (Flush, from the engine), and when it closes. Not thread-safe: a task's stream thread is its
// only user, except for the commit and restore writes it hands to other threads (PrepareCommit,
// PrepareRestore).
class TaskState {
 public:
  static Result<std::unique_ptr<TaskState>> Open(const TaskStateOptions& options);
  // Opens several tasks' states at once, each result in its options' place. An assignment
  // brings a thread up to hundreds of tasks, and opening a database is mostly creating files
  // and waiting for fsync, waits that overlap: 256 new databases took 3.1 s one after another
  // and 1.3-1.6 s on eight threads on the test machine, more than the restore that follows.
  static std::vector<Result<std::unique_ptr<TaskState>>> OpenAll(
      const std::vector<TaskStateOptions>& options);
  // Deletes a task's directory (a replay, or a store that must be rebuilt from scratch).
  static Status Destroy(const std::string& directory);

  virtual ~TaskState() = default;

  // Null when the task has no store of that name and type.
  virtual KeyValueStore* key_value_store(std::string_view name) = 0;
  virtual WindowStore* window_store(std::string_view name) = 0;
  virtual TimerStore* timer_store(std::string_view name) = 0;
  virtual const std::vector<StoreSpec>& stores() const = 0;
  // Committed state only (no buffered writes), safe to read from other threads while the task
  // runs: what interactive queries use. Null when there is no such store.
  virtual ReadOnlyKeyValueStore* committed_key_value_store(std::string_view name) = 0;
  virtual ReadOnlyWindowStore* committed_window_store(std::string_view name) = 0;

  // The changes buffered since the last Commit or Abort, store by store, in key order.
  virtual void VisitPendingChanges(
      const std::function<void(const std::string& store, const PendingChange& change)>& visit)
      const = 0;
  virtual size_t pending_change_count() const = 0;
  // Drops the buffered deletes of keys the committed state does not hold (written and deleted
  // again since the last commit), which would change nothing yet cost changelog records.
  // Before VisitPendingChanges and Commit, between records. Returns how many it dropped;
  // throws StoreFailure when the store cannot be read.
  virtual size_t DropNoOpDeletes() = 0;
  // A write prepared on the task's thread that may run on another (a StateWriter's), while the
  // task's thread leaves the state alone (see PrepareCommit and PrepareRestore).
  using StateWrite = std::function<Status()>;
  // Atomically writes the buffered changes and the checkpoint entries, then clears the buffer.
  // Both steps on the calling thread; on failure the buffer is kept.
  Status Commit(const CheckpointEntries& checkpoint) {
    Status s = PrepareCommit(checkpoint)();
    if (s.ok()) CommitWritten();
    return s;
  }
  // The write of Commit: the buffered changes and `checkpoint` in one WriteBatch. A thread commits
  // all its tasks' writes at once, each task's database on a writer thread, and until a write has
  // run the task's thread does not touch the state; then CommitWritten on the task's thread.
  virtual StateWrite PrepareCommit(CheckpointEntries checkpoint) = 0;
  // After the write PrepareCommit returned succeeded: clears the buffer, and the record cache
  // takes the written values (the task's thread).
  virtual void CommitWritten() = 0;
  // Drops the buffered changes.
  virtual void Abort() = 0;
  // Marks the buffered state; RollbackToSavepoint undoes every store write made since, so a
  // record a processor failed on leaves no trace in the stores.
  virtual void SetSavepoint() = 0;
  virtual void RollbackToSavepoint() = 0;

  // Makes everything written so far (stores and checkpoint) survive a crash of the process.
  // Commit and ApplyRestored do not: a crash loses the writes since the last flush, and the
  // restore reads them back from the changelogs (see TaskState::Open's class comment).
  virtual Status Flush(bool wait) = 0;

  // Changes read back from a store's changelog, applied atomically with checkpoint entries.
  // PrepareRestore runs on the task's thread (it drops what the record cache holds of the
  // store) and returns the write itself, which may run on another thread: a stream thread reads
  // and decides the next changelog records while RocksDB inserts these. Until a write has run,
  // the task's thread only reads this state's size (ApproximateNumEntries, ApproximateSizeBytes)
  // and prepares more writes, which must run in the order prepared. InvalidArgument when there
  // is no such store.
  virtual Result<StateWrite> PrepareRestore(std::string_view store,
                                            std::vector<StoreChange> changes,
                                            CheckpointEntries checkpoint) = 0;
  // Both steps on the calling thread.
  Status ApplyRestored(std::string_view store, std::vector<StoreChange> changes,
                       CheckpointEntries checkpoint) {
    Result<StateWrite> write = PrepareRestore(store, std::move(changes), std::move(checkpoint));
    return write.ok() ? (*write)() : write.status();
  }
  virtual std::optional<std::string> GetCheckpoint(std::string_view key) const = 0;

  // Entries of all stores, committed (RocksDB's estimate) and buffered.
  virtual uint64_t ApproximateNumEntries() const = 0;
  virtual uint64_t ApproximateSizeBytes() const = 0;
};

}  // namespace cm::state
