// TaskState on RocksDB: one database per task with one column family, in which each store has a
// key range of its own ("<store name>\0" + key) and the checkpoint entries (changelog offsets)
// committed with the stores have another ("\0" + key). A column family costs about 50 KiB of
// RocksDB bookkeeping before it holds anything (a table cache, a blob file cache, internal
// stats, a memtable), so a family per store made 256 idle tasks of the cloudmatrix topology
// (21 families each) take some 270 MiB.

#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>
#include <thread>

#include "state/overlay_store.h"
#include "state/rocksdb_key_value_store.h"
#include "state/rocksdb_resources.h"
#include "state/rocksdb_status.h"
#include "state/rocksdb_timer_store.h"
#include "state/rocksdb_window_store.h"
#include "state/task_state.h"

namespace cm::state {

namespace {

// Store names are non-empty and without NUL, so no store's range starts with a NUL byte.
constexpr char kCheckpointPrefix = '\0';
// The family of the layout before one family per task; such a directory is rebuilt.
constexpr std::string_view kLegacyCheckpointFamily = "__checkpoint";
// A task opened without shared resources gets its own, modest budget.
constexpr size_t kPrivateMemoryBytes = size_t{64} << 20;
constexpr int kBloomBitsPerKey = 10;
constexpr size_t kWriteBufferBytes = size_t{16} << 20;
// A memtable reserves memory an arena block at a time, and RocksDB's default block is 1 MiB
// (write_buffer_size / 8). With hundreds of tasks x stores, those reservations alone exceed the
// shared write-buffer budget, so the manager flushed memtables of a handful of entries on
// almost every write: KB-sized files, constant compactions, and every read fetching fresh
// filter and data blocks. Small blocks make a memtable's charge follow what it holds.
constexpr size_t kArenaBlockBytes = size_t{16} << 10;

std::string CheckpointKey(std::string_view key) {
  std::string out(1, kCheckpointPrefix);
  out.append(key);
  return out;
}

rocksdb::CompressionType ChooseCompression() {
  // LZ4 is cheap enough for small records; fall back to none if this build lacks it.
  const std::vector<rocksdb::CompressionType> supported = rocksdb::GetSupportedCompressions();
  const bool has_lz4 =
      std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end();
  return has_lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
}

// A commit writes each store's changes in key order, one store after another. With one insert
// hint per store (its key range: the name up to its NUL; the checkpoint's range is the NUL
// alone), the memtable's skip list goes on from the previous key of the same store instead of
// searching from its top levels for every key.
class StoreRangeTransform final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "cmstream.StoreRange"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    const void* nul = std::memchr(key.data(), '\0', key.size());
    return {key.data(), static_cast<size_t>(static_cast<const char*>(nul) - key.data()) + 1};
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return std::memchr(key.data(), '\0', key.size()) != nullptr;
  }
};

rocksdb::ColumnFamilyOptions MakeColumnFamilyOptions(const StateResources::Impl& resources) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = resources.cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(kBloomBitsPerKey));
  // Index and filter blocks live in the shared cache too, so they count against the bound.
  table.cache_index_and_filter_blocks = true;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.optimize_filters_for_memory = true;

  rocksdb::ColumnFamilyOptions options;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.compaction_style = rocksdb::kCompactionStyleLevel;
  options.level_compaction_dynamic_level_bytes = true;
  options.compression = ChooseCompression();
  // The shared write-buffer manager caps the sum; this caps one store's memtable.
  options.write_buffer_size = kWriteBufferBytes;
  options.arena_block_size = kArenaBlockBytes;
  options.max_write_buffer_number = 3;
  // Most point reads of a busy task are for keys not written yet (a new minute bucket, a new
  // event id): without a filter each walks the memtable's skip list, comparing long keys, before
  // the SST filters say no. Sized for the kFlushChanges entries a memtable holds between
  // flushes, ~16 bits each, so 256 tasks' filters stay a few MiB (charged as memtable memory).
  options.memtable_insert_with_hint_prefix_extractor = std::make_shared<StoreRangeTransform>();
  options.memtable_whole_key_filtering = true;
  options.memtable_prefix_bloom_size_ratio =
      static_cast<double>(kFlushChanges * 16 / 8) / static_cast<double>(kWriteBufferBytes);
  return options;
}

Status ValidateStores(const std::vector<StoreSpec>& stores) {
  std::set<std::string_view> names;
  for (const StoreSpec& spec : stores) {
    if (spec.name.empty() || spec.name.find('\0') != std::string::npos) {
      return Status::InvalidArgument("empty store name, or one with a NUL byte");
    }
    if (!names.insert(spec.name).second) {
      return Status::InvalidArgument("store '" + spec.name + "' declared twice");
    }
    if (spec.type == StoreType::kWindow &&
        (spec.window.size_ms <= 0 || spec.window.grace_ms < 0 || spec.window.retention_ms < 0)) {
      return Status::InvalidArgument("window store '" + spec.name +
                                     "' needs size > 0, grace >= 0, retention >= 0");
    }
  }
  return Status::OK();
}

class RocksDbTaskState final : public TaskState {
 public:
  static Result<std::unique_ptr<TaskState>> Open(const TaskStateOptions& options);

  explicit RocksDbTaskState(std::vector<StoreSpec> specs) : specs_(std::move(specs)) {}
  RocksDbTaskState(const RocksDbTaskState&) = delete;
  RocksDbTaskState& operator=(const RocksDbTaskState&) = delete;
  ~RocksDbTaskState() override;

  KeyValueStore* key_value_store(std::string_view name) override {
    OpenStore* store = Find(name);
    return store != nullptr ? store->key_value.get() : nullptr;
  }
  WindowStore* window_store(std::string_view name) override {
    OpenStore* store = Find(name);
    return store != nullptr ? store->window.get() : nullptr;
  }
  TimerStore* timer_store(std::string_view name) override {
    OpenStore* store = Find(name);
    return store != nullptr ? store->timer.get() : nullptr;
  }
  const std::vector<StoreSpec>& stores() const override { return specs_; }
  ReadOnlyKeyValueStore* committed_key_value_store(std::string_view name) override {
    OpenStore* store = Find(name);
    return store != nullptr ? store->committed_key_value.get() : nullptr;
  }
  ReadOnlyWindowStore* committed_window_store(std::string_view name) override {
    OpenStore* store = Find(name);
    return store != nullptr ? store->committed_window.get() : nullptr;
  }

  void VisitPendingChanges(
      const std::function<void(const std::string& store, const PendingChange& change)>& visit)
      const override;
  size_t pending_change_count() const override;
  size_t DropNoOpDeletes() override;
  StateWrite PrepareCommit(CheckpointEntries checkpoint) override;
  void CommitWritten() override;
  void SetSavepoint() override;
  void RollbackToSavepoint() override;
  void Abort() override;
  Status Flush(bool wait) override;
  Result<StateWrite> PrepareRestore(std::string_view store, std::vector<StoreChange> changes,
                                    CheckpointEntries checkpoint) override;
  std::optional<std::string> GetCheckpoint(std::string_view key) const override;
  uint64_t ApproximateNumEntries() const override;
  uint64_t ApproximateSizeBytes() const override;

 private:
  // One declared store: its raw data and the one typed view its spec asks for, plus a
  // read-only view over the same key range through an overlay that never gets writes, so
  // other threads read committed state only.
  struct OpenStore {
    std::unique_ptr<OverlayStore> data;
    std::unique_ptr<KeyValueStore> key_value;
    std::unique_ptr<WindowStore> window;
    std::unique_ptr<TimerStore> timer;
    std::unique_ptr<OverlayStore> committed_data;
    std::unique_ptr<ReadOnlyKeyValueStore> committed_key_value;
    std::unique_ptr<ReadOnlyWindowStore> committed_window;
  };

  size_t IndexOf(std::string_view name) const;  // specs_.size() when there is none
  OpenStore* Find(std::string_view name);
  Status Write(rocksdb::WriteBatch& batch, const CheckpointEntries& checkpoint,
               std::string_view what);

  std::vector<StoreSpec> specs_;
  std::unique_ptr<StateResources> private_resources_;  // only when none were given
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<OpenStore> open_stores_;  // parallel to specs_
  uint64_t unflushed_ = 0;              // writes since the last flush
};

Result<std::unique_ptr<TaskState>> RocksDbTaskState::Open(const TaskStateOptions& options) {
  if (options.directory.empty()) return Status::InvalidArgument("no state directory");
  if (Status s = ValidateStores(options.stores); !s.ok()) return s;

  std::error_code ec;
  std::filesystem::create_directories(options.directory, ec);
  if (ec) return Status::IOError("create " + options.directory + ": " + ec.message());

  auto state = std::make_unique<RocksDbTaskState>(options.stores);
  StateResources* resources = options.resources;
  if (resources == nullptr) {
    state->private_resources_ = std::make_unique<StateResources>(kPrivateMemoryBytes);
    resources = state->private_resources_.get();
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.write_buffer_manager = resources->impl().write_buffer_manager;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 2;
  // An instance opens one database per task, one after another, on the stream thread. With
  // the default of 16, each open started and joined 15 threads to load its table files (even
  // none), and read table properties for compaction statistics: a third of 256 opens' time.
  db_options.max_file_opening_threads = 1;
  db_options.skip_stats_update_on_db_open = true;
  // No write-ahead log (see TaskState): with one column family, a flush persists the stores
  // and the checkpoint at one point.
  const rocksdb::Options rocksdb_options(db_options, MakeColumnFamilyOptions(resources->impl()));

  // A directory of the family-per-store layout: its stores are rebuilt from their changelogs,
  // as on an instance that never had the task. Stores of a topology that no longer declares
  // them stay in the database untouched, as they did in their own families.
  std::vector<std::string> families;
  if (rocksdb::DB::ListColumnFamilies(db_options, options.directory, &families).ok() &&
      std::find(families.begin(), families.end(), kLegacyCheckpointFamily) != families.end()) {
    if (Status s = TaskState::Destroy(options.directory); !s.ok()) return s;
    std::filesystem::create_directories(options.directory, ec);
    if (ec) return Status::IOError("create " + options.directory + ": " + ec.message());
  }

  rocksdb::DB* db = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(rocksdb_options, options.directory, &db);
  if (!s.ok()) return ToStatus(s, "open " + options.directory);
  state->db_.reset(db);

  for (size_t i = 0; i < options.stores.size(); ++i) {
    const StoreSpec& spec = options.stores[i];
    OpenStore store;
    const std::string prefix = spec.name + '\0';
    store.data =
        std::make_unique<OverlayStore>(*db, prefix, spec.name, options.cache, spec.cache_writes);
    store.committed_data = std::make_unique<OverlayStore>(*db, prefix, spec.name);
    switch (spec.type) {
      case StoreType::kKeyValue:
        store.key_value = std::make_unique<RocksDbKeyValueStore>(*store.data);
        store.committed_key_value = std::make_unique<RocksDbKeyValueStore>(*store.committed_data);
        break;
      case StoreType::kWindow:
        store.window = std::make_unique<RocksDbWindowStore>(*store.data, spec.window);
        store.committed_window =
            std::make_unique<RocksDbWindowStore>(*store.committed_data, spec.window);
        break;
      case StoreType::kTimer:
        store.timer = std::make_unique<RocksDbTimerStore>(*store.data);
        break;
    }
    state->open_stores_.push_back(std::move(store));
  }
  return std::unique_ptr<TaskState>(std::move(state));
}

RocksDbTaskState::~RocksDbTaskState() {
  // A failed flush loses only what the changelogs hold: the next restore reads it back.
  if (db_) {
    [[maybe_unused]] const Status flushed = Flush(true);
  }
  open_stores_.clear();
  if (db_) db_->Close().PermitUncheckedError();
}

size_t RocksDbTaskState::IndexOf(std::string_view name) const {
  const auto it = std::find_if(specs_.begin(), specs_.end(),
                               [&](const StoreSpec& spec) { return spec.name == name; });
  return static_cast<size_t>(it - specs_.begin());
}

RocksDbTaskState::OpenStore* RocksDbTaskState::Find(std::string_view name) {
  const size_t i = IndexOf(name);
  return i < open_stores_.size() ? &open_stores_[i] : nullptr;
}

void RocksDbTaskState::VisitPendingChanges(
    const std::function<void(const std::string& store, const PendingChange& change)>& visit) const {
  for (const OpenStore& store : open_stores_) {
    for (const auto& [key, value] : store.data->pending()) {
      visit(store.data->name(), PendingChange{key, value});
    }
  }
}

size_t RocksDbTaskState::pending_change_count() const {
  size_t count = 0;
  for (const OpenStore& store : open_stores_) count += store.data->pending().size();
  return count;
}

size_t RocksDbTaskState::DropNoOpDeletes() {
  size_t dropped = 0;
  for (OpenStore& store : open_stores_) dropped += store.data->DropNoOpDeletes();
  return dropped;
}

Status RocksDbTaskState::Write(rocksdb::WriteBatch& batch, const CheckpointEntries& checkpoint,
                               std::string_view what) {
  for (const auto& [key, value] : checkpoint) {
    const rocksdb::Status s = batch.Put(CheckpointKey(key), value);
    if (!s.ok()) return ToStatus(s, what);
  }
  if (batch.Count() == 0) return Status::OK();
  rocksdb::WriteOptions options;
  options.disableWAL = true;
  const rocksdb::Status s = db_->Write(options, &batch);
  if (!s.ok()) return ToStatus(s, what);
  unflushed_ += batch.Count();
  // In the background: a crash before it completes leaves the previous flush's state.
  return unflushed_ >= kFlushChanges ? Flush(false) : Status::OK();
}

Status RocksDbTaskState::Flush(bool wait) {
  // A waiting flush also waits for the background flushes issued before: a database closed
  // while one is still queued drops its memtable (RocksDB skips queued flushes once shutting
  // down, and without a write-ahead log nothing else holds those writes).
  if (unflushed_ == 0 && !wait) return Status::OK();
  rocksdb::FlushOptions options;
  options.wait = wait;
  options.allow_write_stall = true;
  const rocksdb::Status s = db_->Flush(options);
  if (!s.ok()) return ToStatus(s, "flush");
  unflushed_ = 0;
  return Status::OK();
}

TaskState::StateWrite RocksDbTaskState::PrepareCommit(CheckpointEntries checkpoint) {
  // Reads the overlays' buffers (which the task's thread leaves alone until CommitWritten) and
  // writes the database, which is thread-safe; the record cache is not touched.
  return [this, checkpoint = std::move(checkpoint)]() -> Status {
    rocksdb::WriteBatch batch;
    for (const OpenStore& store : open_stores_) {
      if (Status s = store.data->AddPendingTo(batch); !s.ok()) return s;
    }
    // On failure the buffer is kept: the caller decides whether to retry or abort.
    return Write(batch, checkpoint, "commit");
  };
}

void RocksDbTaskState::CommitWritten() {
  for (OpenStore& store : open_stores_) store.data->MarkCommitted();
}

void RocksDbTaskState::SetSavepoint() {
  for (OpenStore& store : open_stores_) store.data->SetSavepoint();
}

void RocksDbTaskState::RollbackToSavepoint() {
  for (OpenStore& store : open_stores_) store.data->RollbackToSavepoint();
}

void RocksDbTaskState::Abort() {
  for (OpenStore& store : open_stores_) store.data->DiscardPending();
}

Result<TaskState::StateWrite> RocksDbTaskState::PrepareRestore(std::string_view store_name,
                                                               std::vector<StoreChange> changes,
                                                               CheckpointEntries checkpoint) {
  OpenStore* store = Find(store_name);
  if (store == nullptr) {
    return Status::InvalidArgument("no store named '" + std::string(store_name) + "'");
  }
  // Restore runs before processing; pending writes would be shadowing restored data.
  assert(store->data->pending().empty() && "restoring a store with pending changes");
  if (!store->data->pending().empty()) {
    return Status::Aborted("restoring store '" + store->data->name() + "' with pending changes");
  }
  store->data->Invalidate();  // written around the overlay; the record cache is this thread's
  // From here on only the database (thread-safe), the overlay's key prefix and unflushed_ (no
  // one else writes while a restore runs) are used.
  const OverlayStore* data = store->data.get();
  return StateWrite([this, data, changes = std::move(changes),
                     checkpoint = std::move(checkpoint)]() -> Status {
    // A changelog comes in offset order, keys scattered. In key order the memtable's skip list
    // inserts each key next to the one before instead of searching from the top (a third of a
    // restore's stream thread went to those searches). Stable: a key changed twice keeps its
    // last value.
    std::vector<const StoreChange*> ordered;
    ordered.reserve(changes.size());
    for (const StoreChange& change : changes) ordered.push_back(&change);
    std::stable_sort(ordered.begin(), ordered.end(),
                     [](const StoreChange* a, const StoreChange* b) { return a->key < b->key; });
    rocksdb::WriteBatch batch;
    for (const StoreChange* change_ptr : ordered) {
      const rocksdb::Status s = data->AddWriteTo(batch, change_ptr->key, change_ptr->value);
      if (!s.ok()) return ToStatus(s, "restore");
    }
    return Write(batch, checkpoint, "restore " + data->name());
  });
}

std::optional<std::string> RocksDbTaskState::GetCheckpoint(std::string_view key) const {
  rocksdb::PinnableSlice value;
  const rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), CheckpointKey(key), &value);
  if (s.IsNotFound()) return std::nullopt;
  ThrowIfError(s, "get checkpoint");
  return value.ToString();
}

uint64_t RocksDbTaskState::ApproximateNumEntries() const {
  uint64_t committed = 0;
  db_->GetIntProperty(rocksdb::DB::Properties::kEstimateNumKeys, &committed);
  return committed + pending_change_count();
}

uint64_t RocksDbTaskState::ApproximateSizeBytes() const {
  uint64_t sst = 0;
  uint64_t memtables = 0;
  db_->GetIntProperty(rocksdb::DB::Properties::kLiveSstFilesSize, &sst);
  db_->GetIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &memtables);
  return sst + memtables;
}

}  // namespace

Result<std::unique_ptr<TaskState>> TaskState::Open(const TaskStateOptions& options) {
  return RocksDbTaskState::Open(options);
}

std::vector<Result<std::unique_ptr<TaskState>>> TaskState::OpenAll(
    const std::vector<TaskStateOptions>& options) {
  // More threads gained nothing: the opens then wait on the file system, not on each other.
  constexpr size_t kOpenThreads = 8;
  std::vector<std::optional<Result<std::unique_ptr<TaskState>>>> opened(options.size());
  std::atomic<size_t> next{0};
  auto open_next = [&] {
    for (size_t i; (i = next.fetch_add(1)) < options.size();) opened[i].emplace(Open(options[i]));
  };
  {
    // The calling thread opens its share too; the helpers join at the end of the scope.
    const size_t helpers = options.size() < 2 ? 0 : std::min(kOpenThreads, options.size()) - 1;
    std::vector<std::jthread> threads;
    for (size_t i = 0; i < helpers; ++i) threads.emplace_back(open_next);
    open_next();
  }
  std::vector<Result<std::unique_ptr<TaskState>>> results;
  results.reserve(options.size());
  for (auto& result : opened) results.push_back(std::move(*result));
  return results;
}

Status TaskState::Destroy(const std::string& directory) {
  std::error_code ec;
  if (!std::filesystem::exists(directory, ec)) {
    return ec ? Status::IOError("stat " + directory + ": " + ec.message()) : Status::OK();
  }
  // DestroyDB takes the database lock first, so a state that is still open is not deleted.
  const rocksdb::Status s = rocksdb::DestroyDB(directory, rocksdb::Options());
  if (!s.ok()) return ToStatus(s, "destroy " + directory);
  std::filesystem::remove_all(directory, ec);
  if (ec) return Status::IOError("remove " + directory + ": " + ec.message());
  return Status::OK();
}

}  // namespace cm::state
