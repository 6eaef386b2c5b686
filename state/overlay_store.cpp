#include "state/overlay_store.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include <memory>

#include "state/rocksdb_status.h"

namespace cm::state {

OverlayStore::OverlayStore(rocksdb::DB& db, rocksdb::ColumnFamilyHandle& column_family,
                           std::string name)
    : db_(db), column_family_(column_family), name_(std::move(name)) {}

std::optional<std::string> OverlayStore::Get(std::string_view key) const {
  if (auto it = pending_.find(key); it != pending_.end()) return it->second;
  rocksdb::PinnableSlice value;
  const rocksdb::Status s = db_.Get(rocksdb::ReadOptions(), &column_family_, ToSlice(key), &value);
  if (s.IsNotFound()) return std::nullopt;
  ThrowIfError(s, "get from store " + name_);
  return value.ToString();
}

void OverlayStore::Put(std::string_view key, std::string_view value) { Write(key, value); }

void OverlayStore::Delete(std::string_view key) { Write(key, std::nullopt); }

void OverlayStore::Write(std::string_view key, std::optional<std::string_view> value) {
  std::optional<std::string> stored;
  if (value) stored.emplace(*value);
  if (auto it = pending_.find(key); it != pending_.end()) {
    if (savepoint_) undo_.push_back({it->first, it->second});
    it->second = std::move(stored);
  } else {
    if (savepoint_) undo_.push_back({std::string(key), std::nullopt});
    pending_.emplace(std::string(key), std::move(stored));
  }
}

void OverlayStore::SetSavepoint() {
  savepoint_ = true;
  undo_.clear();
}

void OverlayStore::RollbackToSavepoint() {
  // Newest first, so a key written twice ends at its state before the first write.
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    if (it->previous) {
      pending_[it->key] = std::move(*it->previous);
    } else {
      pending_.erase(it->key);
    }
  }
  if (!undo_.empty()) ++generation_;
  undo_.clear();
}

void OverlayStore::Scan(std::string_view begin, std::string_view end,
                        const EntryVisitor& visit) const {
  // The bound must outlive the iterator, which keeps a pointer to it.
  const std::string upper(end);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions options;
  if (!upper.empty()) options.iterate_upper_bound = &upper_slice;
  const std::unique_ptr<rocksdb::Iterator> committed(db_.NewIterator(options, &column_family_));
  committed->Seek(ToSlice(begin));

  // Iterators of a std::map stay valid when the visitor inserts or overwrites entries.
  auto pending = pending_.lower_bound(begin);
  while (true) {
    const bool has_pending = pending != pending_.end() && (upper.empty() || pending->first < upper);
    const bool has_committed = committed->Valid();
    if (!has_pending && !has_committed) break;

    // < 0: the pending entry comes first; 0: it shadows the committed one; > 0: committed first.
    int order = 0;
    if (!has_committed) {
      order = -1;
    } else if (!has_pending) {
      order = 1;
    } else {
      order = ToSlice(pending->first).compare(committed->key());
    }

    if (order > 0) {
      if (!visit(committed->key().ToStringView(), committed->value().ToStringView())) return;
      committed->Next();
      continue;
    }
    if (order == 0) committed->Next();
    if (pending->second && !visit(pending->first, *pending->second)) return;
    ++pending;
  }
  ThrowIfError(committed->status(), "scan of store " + name_);
}

Status OverlayStore::AddPendingTo(rocksdb::WriteBatch& batch) const {
  for (const auto& [key, value] : pending_) {
    const rocksdb::Status s =
        value ? batch.Put(&column_family_, key, *value) : batch.Delete(&column_family_, key);
    if (!s.ok()) return ToStatus(s, "batch for store " + name_);
  }
  return Status::OK();
}

}  // namespace cm::state
