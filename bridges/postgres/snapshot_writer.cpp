#include "bridges/postgres/snapshot_writer.h"

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <pqxx/tablewriter>

#include "bridges/postgres/postgres_url.h"

namespace cm::postgres {

using state::Result;
using state::Status;

namespace {

// COPY's text format: tab-separated, \N for NULL, backslash escapes. UTF-8 is safe byte by
// byte: no byte of a multi-byte sequence is one of these.
void AppendCopyField(std::string& out, const topology::SnapshotTable::Field& field) {
  if (!field) {
    out += "\\N";
    return;
  }
  for (char c : *field) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out.push_back(c);
    }
  }
}

std::string JoinColumns(const std::vector<std::string>& columns, size_t n,
                        const char* prefix = "") {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i) out += ", ";
    out += prefix;
    out += columns[i];
  }
  return out;
}

// `a`.c = `b`.c for the first `n` columns of `t` (all its key columns by default).
std::string KeyMatch(const topology::SnapshotTable& t, const char* a, const char* b, size_t n = 0) {
  std::string out;
  if (n == 0) n = t.key_columns;
  for (size_t i = 0; i < n; ++i) {
    if (i) out += " AND ";
    out += std::string(a) + "." + t.columns[i] + " = " + b + "." + t.columns[i];
  }
  return out;
}

ChangelogOffsets ParseOffsets(const std::string& text) {
  ChangelogOffsets out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it->is_number_integer()) out[it.key()] = it->get<int64_t>();
  }
  return out;
}

// True when `held` is a later state than `ours`: no store behind, and not the same.
bool Ahead(const ChangelogOffsets& held, const ChangelogOffsets& ours) {
  if (held == ours || held.empty()) return false;
  for (const auto& [store, offset] : ours) {
    auto it = held.find(store);
    if (it == held.end() || it->second < offset) return false;
  }
  return true;
}

// Streams COPY text into a table in chunks of about `chunk_bytes`.
class CopyStream {
 public:
  // tablewriter is libpqxx 6.4's only COPY writer that takes pre-formatted lines: stream_to
  // needs a tuple type fixed at compile time, and our rows' width comes from the schema.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  CopyStream(pqxx::work& tx, const std::string& table, const std::vector<std::string>& columns,
             size_t chunk_bytes)
      : writer_(tx, table, columns.begin(), columns.end()), chunk_bytes_(chunk_bytes) {
    buffer_.reserve(chunk_bytes + 4096);
  }
#pragma GCC diagnostic pop
  void Row(const topology::SnapshotTable::Row& row, size_t fields, const std::string* extra) {
    for (size_t i = 0; i < fields; ++i) {
      if (i) buffer_.push_back('\t');
      AppendCopyField(buffer_, i < row.size() ? row[i] : std::nullopt);
    }
    if (extra) {
      buffer_.push_back('\t');
      AppendCopyField(buffer_, *extra);
    }
    buffer_.push_back('\n');
    if (buffer_.size() >= chunk_bytes_) Flush();
  }
  void Complete() {
    Flush();
    writer_.complete();
  }

 private:
  void Flush() {
    if (buffer_.empty()) return;
    writer_.write_raw_line(buffer_);  // it drops the last '\n' and adds its own
    buffer_.clear();
  }
  pqxx::tablewriter writer_;
  size_t chunk_bytes_;
  std::string buffer_;
};

}  // namespace

struct SnapshotWriter::Connection {
  explicit Connection(const std::string& url) : conn(url) {}
  pqxx::connection conn;
};

SnapshotWriter::SnapshotWriter(topology::SnapshotSchema schema, SnapshotWriterOptions options)
    : schema_(std::move(schema)), options_(std::move(options)) {}

SnapshotWriter::~SnapshotWriter() = default;

Status SnapshotWriter::Connect() {
  if (conn_ && conn_->conn.is_open()) return Status::OK();
  try {
    conn_ = std::make_unique<Connection>(WithConnectTimeout(options_.database_url));
    return Status::OK();
  } catch (const std::exception& e) {
    conn_.reset();
    return Status::Unavailable(std::string("cannot connect to Postgres: ") + e.what());
  }
}

Result<std::optional<ChangelogOffsets>> SnapshotWriter::ReadOffsets(const std::string& task_id) {
  if (auto s = Connect(); !s.ok()) return s;
  try {
    pqxx::read_transaction tx(conn_->conn);
    auto r =
        tx.exec_params("SELECT changelog_offsets::text FROM " + tx.quote_name(options_.schema) +
                           ".snapshot_tasks WHERE task_id = $1",
                       task_id);
    if (r.empty()) return std::optional<ChangelogOffsets>();
    return std::optional<ChangelogOffsets>(ParseOffsets(r[0][0].as<std::string>()));
  } catch (const std::exception& e) {
    conn_.reset();
    return Status::Unavailable(std::string("reading snapshot_tasks failed: ") + e.what());
  }
}

Result<WriteOutcome> SnapshotWriter::Write(const TaskSnapshot& snapshot) {
  if (auto s = Connect(); !s.ok()) return s;
  uint64_t rows = 0;
  try {
    pqxx::work tx(conn_->conn);
    const std::string schema = tx.quote_name(options_.schema) + ".";
    const std::string tasks_table = schema + "snapshot_tasks";
    // The task's row is the lock that orders writers of the same task (an instance that just
    // lost the task may still be flushing it).
    tx.exec_params("INSERT INTO " + tasks_table +
                       " (task_id, changelog_offsets) VALUES ($1, '{}') ON CONFLICT DO NOTHING",
                   snapshot.task_id);
    auto held_row = tx.exec_params1(
        "SELECT changelog_offsets::text FROM " + tasks_table + " WHERE task_id = $1 FOR UPDATE",
        snapshot.task_id);
    const ChangelogOffsets held = ParseOffsets(held_row[0].as<std::string>());
    if (Ahead(held, snapshot.offsets)) return WriteOutcome::kStale;
    if (!snapshot.full && held != snapshot.base) return WriteOutcome::kBaseMismatch;

    for (size_t ti = 0; ti < schema_.tables.size(); ++ti) {
      const topology::SnapshotTable& t = schema_.tables[ti];
      const std::string table = schema + t.table;
      static const std::unordered_map<std::string, std::optional<std::string>> kNone;
      auto found = snapshot.changes.find(t.store);
      const auto& changes = found == snapshot.changes.end() ? kNone : found->second;
      // Deleted keys first (few), then the rows, decoded straight into the COPY stream. A table
      // of several rows per entry first deletes all rows of every changed entry (incrementally;
      // a full snapshot deletes what is not among its rows below).
      const bool many = static_cast<bool>(t.decode_rows);
      const size_t delete_columns = many ? t.entry_columns : t.key_columns;
      std::vector<topology::SnapshotTable::Row> deletes;
      size_t values = 0;
      for (const auto& [key, value] : changes) {
        if (value) ++values;
        if (many) {
          if (snapshot.full) continue;
          if (auto entry = t.decode_rows(key, std::nullopt); entry && !entry->empty())
            deletes.push_back(std::move(entry->front()));
        } else if (!value) {
          if (auto row = t.decode(key, std::nullopt)) deletes.push_back(std::move(*row));
        }
      }
      const std::string n = std::to_string(ti);
      if (!deletes.empty()) {
        const std::string stage = "cm_delete_" + n;
        tx.exec("CREATE TEMP TABLE " + stage + " ON COMMIT DROP AS SELECT " +
                JoinColumns(t.columns, delete_columns) + " FROM " + table + " WITH NO DATA");
        std::vector<std::string> keys(t.columns.begin(), t.columns.begin() + delete_columns);
        CopyStream copy(tx, stage, keys, options_.copy_chunk_bytes);
        for (const auto& row : deletes) copy.Row(row, delete_columns, nullptr);
        copy.Complete();
        rows += tx.exec("DELETE FROM " + table + " t USING " + stage + " d WHERE " +
                        KeyMatch(t, "t", "d", delete_columns))
                    .affected_rows();
      }
      if (values == 0 && !snapshot.full) continue;
      const std::string stage = "cm_stage_" + n;
      tx.exec("CREATE TEMP TABLE " + stage + " (LIKE " + table +
              " INCLUDING DEFAULTS) ON COMMIT DROP");
      std::vector<std::string> columns = t.columns;
      columns.push_back("task_id");
      {
        CopyStream copy(tx, stage, columns, options_.copy_chunk_bytes);
        for (const auto& [key, value] : changes) {
          if (!value) continue;
          if (many) {
            if (auto entry = t.decode_rows(key, std::string_view(*value))) {
              for (const auto& row : *entry) copy.Row(row, t.columns.size(), &snapshot.task_id);
            }
          } else if (auto row = t.decode(key, std::string_view(*value))) {
            copy.Row(*row, t.columns.size(), &snapshot.task_id);
          }
        }
        copy.Complete();
      }
      std::string set;
      for (size_t i = t.key_columns; i < columns.size(); ++i) {
        if (!set.empty()) set += ", ";
        set += columns[i] + " = EXCLUDED." + columns[i];
      }
      const std::string all = JoinColumns(columns, columns.size());
      rows += tx.exec("INSERT INTO " + table + " (" + all + ") SELECT " + all + " FROM " + stage +
                      " ON CONFLICT (" + JoinColumns(t.columns, t.key_columns) +
                      ") DO UPDATE SET " + set)
                  .affected_rows();
      if (snapshot.full) {
        // Rows of the task the stores no longer hold (deleted while no snapshot was taken).
        rows += tx.exec_params("DELETE FROM " + table +
                                   " t WHERE t.task_id = $1 AND NOT EXISTS "
                                   "(SELECT 1 FROM " +
                                   stage + " s WHERE " + KeyMatch(t, "s", "t") + ")",
                               snapshot.task_id)
                    .affected_rows();
      }
    }
    nlohmann::json offsets(snapshot.offsets);
    tx.exec_params(
        "UPDATE " + tasks_table +
            " SET changelog_offsets = $2::jsonb, snapshotted_at = now() WHERE task_id = $1",
        snapshot.task_id, offsets.dump());
    tx.commit();
  } catch (const std::exception& e) {
    conn_.reset();  // a failed connection or transaction: start over on the next call
    return Status::Unavailable("snapshot of task " + snapshot.task_id + " failed: " + e.what());
  }
  rows_written_ += rows;
  return WriteOutcome::kWritten;
}

}  // namespace cm::postgres
