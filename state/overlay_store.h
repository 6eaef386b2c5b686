#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "state/key_value_store.h"
#include "state/record_cache.h"
#include "state/status.h"

namespace rocksdb {
class DB;
class PinnableSlice;
class Status;
class WriteBatch;
}  // namespace rocksdb

namespace cm::state {

// One store's key range of its task's database seen through its write overlay: the raw entries
// written since the last commit, kept in memory until the commit puts them into one WriteBatch
// with the checkpoint (TaskState::PrepareCommit). Reads merge the overlay over the database (the
// overlay wins, its tombstones hide committed entries), so a task reads its own uncommitted writes.
// With a record cache, point reads look in the cache before RocksDB, and committed writes stay in
// it as clean entries. The key-value, window and timer stores are encodings on top of this one
// class.
class OverlayStore {
 public:
  // Raw key -> value; nullopt is a delete.
  using Overlay = std::map<std::string, std::optional<std::string>, std::less<>>;

  // The store's entries are the database's keys that start with key_prefix, which no other
  // store's prefix may start with; Get, Put, Scan and the overlay take keys without it.
  // db and cache (null: none) must outlive the store. With cache_writes, a commit's writes
  // enter the cache (StoreSpec::cache_writes); without, they only refresh keys it holds.
  OverlayStore(rocksdb::DB& db, std::string key_prefix, std::string name,
               RecordCache* cache = nullptr, bool cache_writes = false);
  ~OverlayStore();
  OverlayStore(const OverlayStore&) = delete;
  OverlayStore& operator=(const OverlayStore&) = delete;

  const std::string& name() const { return name_; }
  // A store key as the database holds it.
  std::string DatabaseKey(std::string_view key) const;

  std::optional<std::string> Get(std::string_view key) const;
  // Get for each key, with the keys that neither the overlay nor the cache holds read from
  // RocksDB in one MultiGet.
  std::vector<std::optional<std::string>> MultiGet(const std::vector<std::string>& keys) const;
  void Put(std::string_view key, std::string_view value);
  void Delete(std::string_view key);

  // Visits the live entries with begin <= key < end (an empty end means no upper bound) in key
  // order until visit returns false. The views are valid during the call only. The visitor may
  // write to the store (e.g. delete the entry it visits); whether the rest of the scan sees its
  // writes at later keys is unspecified.
  void Scan(std::string_view begin, std::string_view end, const EntryVisitor& visit) const;

  // Marks the overlay's current state; RollbackToSavepoint returns to it (the writes of one
  // record that a processor failed on must not reach the commit).
  void SetSavepoint();
  void RollbackToSavepoint();

  const Overlay& pending() const { return pending_; }
  // Adds the pending writes to batch as Puts and Deletes of this store's database keys.
  Status AddPendingTo(rocksdb::WriteBatch& batch) const;
  // Adds one write of key (nullopt: a delete) to batch under this store's database key, given to
  // the batch as prefix and key so that no string is built for it.
  rocksdb::Status AddWriteTo(rocksdb::WriteBatch& batch, std::string_view key,
                             const std::optional<std::string>& value) const;
  // Drops the pending deletes of keys the committed state does not hold (a key written and
  // deleted again since the last commit, as a timer set and fired within one commit): they
  // change nothing, yet each would cost a changelog record and a tombstone that compactions
  // carry. Only deletes that replaced a pending put are checked, against the cache and one
  // MultiGet. Between records only: it clears the savepoint's undo log. Throws StoreFailure
  // on an I/O error. Returns how many it dropped.
  size_t DropNoOpDeletes();
  // After a commit wrote the pending writes: the cache's entries of their keys take the new
  // values, and with cache_writes the written values enter the cache.
  void MarkCommitted();
  // Drops the pending writes unwritten (an aborted commit).
  void DiscardPending();
  // Changes whenever writes are undone (RollbackToSavepoint, DiscardPending) or the store is
  // written around the overlay (a restore): what a reader cached about the store's contents
  // (the timer store's low-water mark) is stale once it changed.
  uint64_t generation() const { return generation_; }
  // The store was written around the overlay (a restore): forget what was cached.
  void Invalidate();

 private:
  void Write(std::string_view key, std::optional<std::string_view> value);
  // The overlay's entry for key, else the cache's; null when only RocksDB can answer.
  const std::optional<std::string>* FindInMemory(std::string_view key) const;
  // Reads db_keys (database keys) from RocksDB in one MultiGet and hands each answer to
  // `answer` with its index.
  void MultiGetFromDatabase(
      const std::vector<std::string>& db_keys,
      const std::function<void(size_t i, const rocksdb::Status& status,
                               const rocksdb::PinnableSlice& value)>& answer) const;
  // What RocksDB answered for key, cached when found; throws StoreFailure on an I/O error.
  std::optional<std::string> FromDatabase(std::string_view key, const rocksdb::Status& status,
                                          const rocksdb::PinnableSlice& value) const;
  static int64_t Charge(std::string_view key, const std::optional<std::string>& value) {
    return static_cast<int64_t>(RecordCache::Charge(key, value));
  }
  // Tells the cache how much the pending writes grew or shrank.
  void AddPendingBytes(int64_t delta);

  rocksdb::DB& db_;
  std::string key_prefix_;
  std::string name_;
  RecordCache* cache_;
  bool cache_writes_;
  RecordCache::StoreId cache_id_ = 0;
  Overlay pending_;
  int64_t pending_bytes_ = 0;
  // What each write since the savepoint replaced: the key's previous overlay entry, or nullopt
  // when the key had none. The overlay's entries stay put until the undo log is cleared.
  struct Undo {
    Overlay::iterator entry;
    std::optional<std::optional<std::string>> previous;
  };
  bool savepoint_ = false;
  std::vector<Undo> undo_;
  // Entries whose pending put a delete replaced since the last commit, for DropNoOpDeletes (an
  // entry may be listed twice, or have been written again since). Entries, not key copies: the
  // overlay's nodes stay put until a commit, an abort, DropNoOpDeletes or a rollback erases
  // them, and a rollback first drops what was listed since its savepoint.
  std::vector<Overlay::iterator> deleted_puts_;
  size_t deleted_puts_at_savepoint_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace cm::state
