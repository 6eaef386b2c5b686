#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "state/status.h"
#include "topology/processor/snapshot_schema.h"
#include "topology/runtime/state_snapshot_listener.h"

namespace cm::postgres {

using ChangelogOffsets = topology::StateSnapshotListener::ChangelogOffsets;
// Store -> key -> latest value (nullopt: deleted). Coalesced: one entry per key.
using StoreChanges =
    std::map<std::string, std::unordered_map<std::string, std::optional<std::string>>>;

// What one task's snapshot transaction writes.
struct TaskSnapshot {
  std::string task_id;
  // Full: `changes` hold every entry of the task's stores and replace all of its rows (rows of
  // the task that are not among them are deleted). Otherwise the changes since `base`.
  bool full = false;
  ChangelogOffsets base;     // incremental only: what Postgres must hold for the task now
  ChangelogOffsets offsets;  // what the rows reflect once written
  StoreChanges changes;
};

enum class WriteOutcome {
  kWritten,
  kStale,         // Postgres already holds a later state of the task; nothing written
  kBaseMismatch,  // incremental, but Postgres does not hold `base`: a full snapshot is needed
};

struct SnapshotWriterOptions {
  std::string database_url;
  std::string schema = "public";
  size_t copy_chunk_bytes = 1 << 20;  // COPY data handed to libpq per call
};

// Writes task snapshots into the tables of a SnapshotSchema, one Postgres transaction per task:
// COPY into temporary staging tables, upsert (INSERT ... ON CONFLICT DO UPDATE), DELETE for
// deleted keys, and the task's snapshot_tasks row with its changelog offsets. Connects on first
// use and again after any failure. Not thread-safe.
class SnapshotWriter {
 public:
  SnapshotWriter(topology::SnapshotSchema schema, SnapshotWriterOptions options);
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  state::Result<WriteOutcome> Write(const TaskSnapshot& snapshot);
  // The offsets Postgres holds for a task; nullopt when it holds none.
  state::Result<std::optional<ChangelogOffsets>> ReadOffsets(const std::string& task_id);

  uint64_t rows_written() const { return rows_written_; }  // upserted plus deleted

 private:
  state::Status Connect();

  struct Connection;  // pqxx stays out of this header

  topology::SnapshotSchema schema_;
  SnapshotWriterOptions options_;
  std::unique_ptr<Connection> conn_;
  uint64_t rows_written_ = 0;
};

}  // namespace cm::postgres
