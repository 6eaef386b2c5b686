#include "state/overlay_store.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <cassert>
#include <memory>

#include "state/key_codec.h"
#include "state/rocksdb_status.h"

namespace cm::state {

OverlayStore::OverlayStore(rocksdb::DB& db, std::string key_prefix, std::string name,
                           RecordCache* cache, bool cache_writes)
    : db_(db),
      key_prefix_(std::move(key_prefix)),
      name_(std::move(name)),
      cache_(cache),
      cache_writes_(cache_writes) {
  assert(!key_prefix_.empty() && "a store needs a key range of its own");
  if (cache_ != nullptr) cache_id_ = cache_->AddStore();
}

OverlayStore::~OverlayStore() {
  if (cache_ == nullptr) return;
  cache_->ClearStore(cache_id_);
  cache_->AddBuffered(-pending_bytes_);
}

const std::optional<std::string>* OverlayStore::FindInMemory(std::string_view key) const {
  if (auto it = pending_.find(key); it != pending_.end()) return &it->second;
  return cache_ != nullptr ? cache_->Find(cache_id_, key) : nullptr;
}

std::optional<std::string> OverlayStore::FromDatabase(std::string_view key,
                                                      const rocksdb::Status& status,
                                                      const rocksdb::PinnableSlice& value) const {
  if (status.IsNotFound()) return std::nullopt;  // not cached: most such keys are written once
  ThrowIfError(status, "get from store " + name_);
  std::string result = value.ToString();
  if (cache_ != nullptr) cache_->Put(cache_id_, std::string(key), result);
  return result;
}

std::optional<std::string> OverlayStore::Get(std::string_view key) const {
  if (const std::optional<std::string>* found = FindInMemory(key)) return *found;
  rocksdb::PinnableSlice value;
  const rocksdb::Status s =
      db_.Get(rocksdb::ReadOptions(), db_.DefaultColumnFamily(), DatabaseKey(key), &value);
  return FromDatabase(key, s, value);
}

std::vector<std::optional<std::string>> OverlayStore::MultiGet(
    const std::vector<std::string>& keys) const {
  std::vector<std::optional<std::string>> out(keys.size());
  std::vector<size_t> unread;  // indexes of the keys RocksDB has to answer
  for (size_t i = 0; i < keys.size(); ++i) {
    if (const std::optional<std::string>* found = FindInMemory(keys[i])) {
      out[i] = *found;
    } else {
      unread.push_back(i);
    }
  }
  if (unread.empty()) return out;
  std::vector<std::string> db_keys;
  db_keys.reserve(unread.size());
  for (size_t i : unread) db_keys.push_back(DatabaseKey(keys[i]));
  MultiGetFromDatabase(
      db_keys, [&](size_t j, const rocksdb::Status& status, const rocksdb::PinnableSlice& value) {
        out[unread[j]] = FromDatabase(keys[unread[j]], status, value);
      });
  return out;
}

void OverlayStore::MultiGetFromDatabase(
    const std::vector<std::string>& db_keys,
    const std::function<void(size_t i, const rocksdb::Status& status,
                             const rocksdb::PinnableSlice& value)>& answer) const {
  const std::vector<rocksdb::Slice> slices(db_keys.begin(), db_keys.end());
  std::vector<rocksdb::PinnableSlice> values(db_keys.size());
  std::vector<rocksdb::Status> statuses(db_keys.size());
  db_.MultiGet(rocksdb::ReadOptions(), db_.DefaultColumnFamily(), db_keys.size(), slices.data(),
               values.data(), statuses.data());
  for (size_t i = 0; i < db_keys.size(); ++i) answer(i, statuses[i], values[i]);
}

std::string OverlayStore::DatabaseKey(std::string_view key) const {
  std::string out;
  out.reserve(key_prefix_.size() + key.size());
  out.append(key_prefix_).append(key);
  return out;
}

void OverlayStore::AddPendingBytes(int64_t delta) {
  pending_bytes_ += delta;
  if (cache_ != nullptr && delta != 0) cache_->AddBuffered(delta);
}

size_t OverlayStore::DropNoOpDeletes() {
  if (deleted_puts_.empty()) return 0;
  // A key deleted twice is listed twice: one entry each, or the erase below would run twice.
  const auto by_entry = [](Overlay::iterator a, Overlay::iterator b) {
    return std::less<const Overlay::value_type*>()(&*a, &*b);
  };
  std::sort(deleted_puts_.begin(), deleted_puts_.end(), by_entry);
  deleted_puts_.erase(std::unique(deleted_puts_.begin(), deleted_puts_.end()), deleted_puts_.end());
  std::vector<Overlay::iterator> absent;  // pending deletes of keys not committed: dropped
  std::vector<Overlay::iterator> unread;  // pending deletes RocksDB has to decide
  for (const Overlay::iterator it : deleted_puts_) {
    if (it->second) continue;  // written again since
    const std::optional<std::string>* cached =
        cache_ != nullptr ? cache_->Find(cache_id_, it->first) : nullptr;
    if (cached == nullptr) {
      unread.push_back(it);
    } else if (!*cached) {
      absent.push_back(it);
    }
  }
  deleted_puts_.clear();
  deleted_puts_at_savepoint_ = 0;
  undo_.clear();  // its iterators may point at entries erased below
  if (!unread.empty()) {
    std::vector<std::string> db_keys;
    db_keys.reserve(unread.size());
    for (const auto& it : unread) db_keys.push_back(DatabaseKey(it->first));
    MultiGetFromDatabase(
        db_keys, [&](size_t i, const rocksdb::Status& status, const rocksdb::PinnableSlice&) {
          if (status.IsNotFound()) {
            absent.push_back(unread[i]);
          } else {
            ThrowIfError(status, "get from store " + name_);
          }
        });
  }
  for (const auto& it : absent) {
    AddPendingBytes(-Charge(it->first, it->second));
    pending_.erase(it);
  }
  return absent.size();
}

void OverlayStore::MarkCommitted() {
  AddPendingBytes(-pending_bytes_);
  if (cache_ != nullptr) {
    // Each entry leaves the overlay as a node, so the cache takes its key without a copy.
    while (!pending_.empty()) {
      auto entry = pending_.extract(pending_.begin());
      // A delete only refreshes: a key deleted is seldom read again.
      if (cache_writes_ && entry.mapped()) {
        cache_->Put(cache_id_, std::move(entry.key()), std::move(entry.mapped()));
      } else {
        cache_->Update(cache_id_, entry.key(), std::move(entry.mapped()));
      }
    }
  }
  pending_.clear();
  undo_.clear();
  deleted_puts_.clear();
  deleted_puts_at_savepoint_ = 0;
}

void OverlayStore::DiscardPending() {
  AddPendingBytes(-pending_bytes_);
  pending_.clear();
  undo_.clear();
  deleted_puts_.clear();
  deleted_puts_at_savepoint_ = 0;
  ++generation_;
}

void OverlayStore::Invalidate() {
  if (cache_ != nullptr) cache_->ClearStore(cache_id_);
  ++generation_;
}

void OverlayStore::Put(std::string_view key, std::string_view value) { Write(key, value); }

void OverlayStore::Delete(std::string_view key) { Write(key, std::nullopt); }

void OverlayStore::Write(std::string_view key, std::optional<std::string_view> value) {
  std::optional<std::string> stored;
  if (value) stored.emplace(*value);
  const int64_t charge = Charge(key, stored);
  // One search of the tree: a new key goes in at the position it found.
  const auto it = pending_.lower_bound(key);
  if (it != pending_.end() && it->first == key) {
    if (!stored && it->second) deleted_puts_.push_back(it);
    AddPendingBytes(charge - Charge(key, it->second));
    if (savepoint_) undo_.push_back({it, std::move(it->second)});
    it->second = std::move(stored);
  } else {
    AddPendingBytes(charge);
    const auto added = pending_.emplace_hint(it, std::string(key), std::move(stored));
    if (savepoint_) undo_.push_back({added, std::nullopt});
  }
}

void OverlayStore::SetSavepoint() {
  savepoint_ = true;
  undo_.clear();
  deleted_puts_at_savepoint_ = deleted_puts_.size();
}

void OverlayStore::RollbackToSavepoint() {
  // Deletes since the savepoint are undone, and the entries of keys new since then erased.
  if (savepoint_ && deleted_puts_.size() > deleted_puts_at_savepoint_)
    deleted_puts_.resize(deleted_puts_at_savepoint_);
  // Newest first, so a key written twice ends at its state before the first write.
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    const auto current = it->entry;
    int64_t delta = -Charge(current->first, current->second);
    if (it->previous) {
      delta += Charge(current->first, *it->previous);
      current->second = std::move(*it->previous);
    } else {
      pending_.erase(current);
    }
    AddPendingBytes(delta);
  }
  if (!undo_.empty()) ++generation_;
  undo_.clear();
}

void OverlayStore::Scan(std::string_view begin, std::string_view end,
                        const EntryVisitor& visit) const {
  // The bound must outlive the iterator, which keeps a pointer to it. Without an end, the
  // store's range ends where keys stop starting with its prefix.
  const std::string upper = end.empty() ? PrefixSuccessor(key_prefix_) : DatabaseKey(end);
  const rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions options;
  options.iterate_upper_bound = &upper_slice;
  const std::unique_ptr<rocksdb::Iterator> committed(
      db_.NewIterator(options, db_.DefaultColumnFamily()));
  committed->Seek(DatabaseKey(begin));
  const auto committed_key = [&] {
    rocksdb::Slice key = committed->key();
    key.remove_prefix(key_prefix_.size());
    return key;
  };

  // Iterators of a std::map stay valid when the visitor inserts or overwrites entries.
  auto pending = pending_.lower_bound(begin);
  while (true) {
    const bool has_pending = pending != pending_.end() && (end.empty() || pending->first < end);
    const bool has_committed = committed->Valid();
    if (!has_pending && !has_committed) break;

    // < 0: the pending entry comes first; 0: it shadows the committed one; > 0: committed first.
    int order = 0;
    if (!has_committed) {
      order = -1;
    } else if (!has_pending) {
      order = 1;
    } else {
      order = ToSlice(pending->first).compare(committed_key());
    }

    if (order > 0) {
      if (!visit(committed_key().ToStringView(), committed->value().ToStringView())) return;
      committed->Next();
      continue;
    }
    if (order == 0) committed->Next();
    if (pending->second && !visit(pending->first, *pending->second)) return;
    ++pending;
  }
  ThrowIfError(committed->status(), "scan of store " + name_);
}

rocksdb::Status OverlayStore::AddWriteTo(rocksdb::WriteBatch& batch, std::string_view key,
                                         const std::optional<std::string>& value) const {
  const rocksdb::Slice parts[2] = {rocksdb::Slice(key_prefix_), ToSlice(key)};
  const rocksdb::SliceParts stored(parts, 2);
  if (!value) return batch.Delete(stored);
  const rocksdb::Slice value_slice(*value);
  return batch.Put(stored, rocksdb::SliceParts(&value_slice, 1));
}

Status OverlayStore::AddPendingTo(rocksdb::WriteBatch& batch) const {
  for (const auto& [key, value] : pending_) {
    const rocksdb::Status s = AddWriteTo(batch, key, value);
    if (!s.ok()) return ToStatus(s, "batch for store " + name_);
  }
  return Status::OK();
}

}  // namespace cm::state
