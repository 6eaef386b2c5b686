#include "state/record_cache.h"

#include <cassert>
#include <iterator>

namespace cm::state {

void RecordCache::ClearStore(StoreId store) {
  auto it = indexes_.find(store);
  if (it == indexes_.end()) return;
  for (auto& [key, entry] : it->second) {
    stats_.clean_bytes -= entry->charge;
    lru_.erase(entry);
  }
  stats_.entries -= it->second.size();
  indexes_.erase(it);
}

const std::optional<std::string>* RecordCache::Find(StoreId store, std::string_view key) {
  auto index = indexes_.find(store);
  if (index != indexes_.end()) {
    if (auto found = index->second.find(Hashed(key)); found != index->second.end()) {
      ++stats_.hits;
      lru_.splice(lru_.begin(), lru_, found->second);  // iterators stay valid
      return &found->second->value;
    }
  }
  ++stats_.misses;
  return nullptr;
}

void RecordCache::Update(StoreId store, std::string_view key, std::optional<std::string> value) {
  auto index = indexes_.find(store);
  if (index == indexes_.end()) return;
  auto found = index->second.find(Hashed(key));
  if (found == index->second.end()) return;
  Replace(index->second, found->second, std::move(value));
}

void RecordCache::Put(StoreId store, std::string key, std::optional<std::string> value) {
  Index& index = indexes_[store];
  const HashedKey hashed = Hashed(key);
  if (auto found = index.find(hashed); found != index.end()) {
    // Replaced where it is: a key committed again (a delivery's each step) costs one lookup,
    // not an erase, a copy of the key and an insert.
    Replace(index, found->second, std::move(value));
    return;
  }
  const size_t charge = Charge(key, value);
  if (charge + buffered_bytes_ > max_bytes_) {
    if (index.empty()) indexes_.erase(store);
    return;
  }
  lru_.push_front(Entry{store, std::move(key), std::move(value), charge, hashed.hash});
  index.emplace(HashedKey{lru_.front().key, hashed.hash}, lru_.begin());
  ++stats_.entries;
  stats_.clean_bytes += charge;
  EvictToFit();
}

void RecordCache::Replace(Index& index, Lru::iterator entry, std::optional<std::string> value) {
  const size_t charge = Charge(entry->key, value);
  if (charge + buffered_bytes_ > max_bytes_) {
    // Larger than the budget: kept, it would push out every other entry.
    const StoreId store = entry->store;
    Erase(index, entry);
    if (index.empty()) indexes_.erase(store);
    return;
  }
  stats_.clean_bytes = stats_.clean_bytes - entry->charge + charge;
  entry->value = std::move(value);
  entry->charge = charge;
  lru_.splice(lru_.begin(), lru_, entry);
  EvictToFit();  // never this entry, the most recent, which fits
}

void RecordCache::AddBuffered(int64_t delta) {
  assert(delta >= 0 || buffered_bytes_ >= static_cast<size_t>(-delta));
  buffered_bytes_ = static_cast<size_t>(static_cast<int64_t>(buffered_bytes_) + delta);
  stats_.buffered_bytes = buffered_bytes_;
  if (delta > 0) EvictToFit();
}

void RecordCache::Erase(Index& index, Lru::iterator entry) {
  stats_.clean_bytes -= entry->charge;
  --stats_.entries;
  index.erase(HashedKey{entry->key, entry->hash});
  lru_.erase(entry);
}

void RecordCache::EvictToFit() {
  while (!lru_.empty() && stats_.clean_bytes + buffered_bytes_ > max_bytes_) {
    const auto victim = std::prev(lru_.end());
    auto index = indexes_.find(victim->store);
    assert(index != indexes_.end());
    Erase(index->second, victim);
    if (index->second.empty()) indexes_.erase(index);
    ++stats_.evictions;
  }
}

}  // namespace cm::state
