#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "child_process.h"
#include "state/record_cache.h"
#include "state/task_state.h"

namespace cm::state {
namespace {

constexpr size_t kOverhead = RecordCache::kEntryOverhead;

std::optional<std::string> Cached(RecordCache& cache, RecordCache::StoreId store,
                                  std::string_view key) {
  const std::optional<std::string>* found = cache.Find(store, key);
  if (found == nullptr) return "<not cached>";
  return *found;
}

TEST(RecordCacheTest, EvictsTheLeastRecentlyUsedEntryFirst) {
  // Room for three entries of a 1-byte key and a 9-byte value.
  RecordCache cache(3 * (10 + kOverhead));
  const auto store = cache.AddStore();
  cache.Put(store, "a", "123456789");
  cache.Put(store, "b", "123456789");
  cache.Put(store, "c", "123456789");
  ASSERT_EQ(Cached(cache, store, "a"), "123456789");  // a is now the most recent
  cache.Put(store, "d", "123456789");

  EXPECT_EQ(Cached(cache, store, "b"), "<not cached>");
  EXPECT_EQ(Cached(cache, store, "a"), "123456789");
  EXPECT_EQ(Cached(cache, store, "c"), "123456789");
  EXPECT_EQ(Cached(cache, store, "d"), "123456789");
  EXPECT_EQ(cache.stats().evictions, 1U);
  EXPECT_EQ(cache.stats().entries, 3U);
  EXPECT_EQ(cache.stats().clean_bytes, 3 * (10 + kOverhead));
}

TEST(RecordCacheTest, CountsEveryEntrysKeyValueAndOverhead) {
  RecordCache cache(1 << 20);
  const auto store = cache.AddStore();
  cache.Put(store, "key", "value");
  cache.Put(store, "gone", std::nullopt);  // known absent: key and overhead only
  EXPECT_EQ(cache.stats().clean_bytes, (3 + 5 + kOverhead) + (4 + kOverhead));

  cache.Update(store, "key", std::string(100, 'x'));
  EXPECT_EQ(Cached(cache, store, "key"), std::string(100, 'x'));
  EXPECT_EQ(cache.stats().clean_bytes, (3 + 100 + kOverhead) + (4 + kOverhead));

  cache.Update(store, "never-read", "v");  // a key written but not cached stays out
  EXPECT_EQ(Cached(cache, store, "never-read"), "<not cached>");
  EXPECT_EQ(cache.stats().entries, 2U);

  cache.ClearStore(store);
  EXPECT_EQ(cache.stats().entries, 0U);
  EXPECT_EQ(cache.stats().clean_bytes, 0U);
  EXPECT_EQ(Cached(cache, store, "key"), "<not cached>");
}

TEST(RecordCacheTest, AnEntryLargerThanTheBudgetIsNotKept) {
  RecordCache cache(200);
  const auto store = cache.AddStore();
  cache.Put(store, "small", "v");
  cache.Put(store, "big", std::string(500, 'x'));
  EXPECT_EQ(Cached(cache, store, "big"), "<not cached>");
  EXPECT_EQ(Cached(cache, store, "small"), "v") << "a refused entry evicts nothing";
}

TEST(RecordCacheTest, APutOfACachedKeyReplacesItsValueAndMakesItTheMostRecent) {
  // Room for three entries of a 1-byte key and a 9-byte value.
  RecordCache cache(3 * (10 + kOverhead));
  const auto store = cache.AddStore();
  for (const char* key : {"a", "b", "c"}) cache.Put(store, key, "123456789");
  cache.Put(store, "a", "abcdefghi");  // a is now the most recent
  EXPECT_EQ(cache.stats().entries, 3U);
  EXPECT_EQ(cache.stats().clean_bytes, 3 * (10 + kOverhead));
  cache.Put(store, "d", "123456789");
  EXPECT_EQ(Cached(cache, store, "b"), "<not cached>");
  EXPECT_EQ(Cached(cache, store, "a"), "abcdefghi");

  cache.Put(store, "a", std::nullopt);  // known absent now
  EXPECT_EQ(Cached(cache, store, "a"), std::nullopt);
  EXPECT_EQ(cache.stats().clean_bytes, (1 + kOverhead) + 2 * (10 + kOverhead));
}

TEST(RecordCacheTest, ACachedKeyWhoseNewValueOutgrowsTheBudgetLeavesAndPushesOutNothing) {
  RecordCache cache(3 * (10 + kOverhead));
  const auto store = cache.AddStore();
  for (const char* key : {"a", "b", "c"}) cache.Put(store, key, "123456789");
  cache.Update(store, "c", std::string(1000, 'x'));
  EXPECT_EQ(Cached(cache, store, "c"), "<not cached>");
  EXPECT_EQ(Cached(cache, store, "a"), "123456789");
  EXPECT_EQ(Cached(cache, store, "b"), "123456789");
  cache.Put(store, "b", std::string(1000, 'x'));
  EXPECT_EQ(Cached(cache, store, "b"), "<not cached>");
  EXPECT_EQ(Cached(cache, store, "a"), "123456789");
  EXPECT_EQ(cache.stats().entries, 1U);
  EXPECT_EQ(cache.stats().clean_bytes, 10 + kOverhead);
  EXPECT_EQ(cache.stats().evictions, 0U);
}

TEST(RecordCacheTest, StoresHaveSeparateKeySpaces) {
  RecordCache cache(1 << 20);
  const auto one = cache.AddStore();
  const auto two = cache.AddStore();
  cache.Put(one, "k", "1");
  cache.Put(two, "k", "2");
  EXPECT_EQ(Cached(cache, one, "k"), "1");
  EXPECT_EQ(Cached(cache, two, "k"), "2");
  cache.ClearStore(one);
  EXPECT_EQ(Cached(cache, one, "k"), "<not cached>");
  EXPECT_EQ(Cached(cache, two, "k"), "2");
}

TEST(RecordCacheTest, BufferedWritesPushOutCleanEntriesAndAskForACommitOnceOverBudget) {
  RecordCache cache(4 * (10 + kOverhead));
  const auto store = cache.AddStore();
  for (const char* key : {"a", "b", "c", "d"}) cache.Put(store, key, "123456789");
  ASSERT_EQ(cache.stats().entries, 4U);

  cache.AddBuffered(2 * (10 + kOverhead));
  EXPECT_EQ(cache.stats().entries, 2U) << "the two least recently used entries make room";
  EXPECT_EQ(Cached(cache, store, "a"), "<not cached>");
  EXPECT_EQ(Cached(cache, store, "d"), "123456789");
  EXPECT_FALSE(cache.commit_needed());

  cache.AddBuffered(3 * (10 + kOverhead));
  EXPECT_EQ(cache.stats().entries, 0U);
  EXPECT_TRUE(cache.commit_needed());
  cache.AddBuffered(-5 * static_cast<int64_t>(10 + kOverhead));  // committed
  EXPECT_FALSE(cache.commit_needed());
  EXPECT_EQ(cache.stats().buffered_bytes, 0U);
}

TEST(RecordCacheTest, CountsHitsAndMisses) {
  RecordCache cache(1 << 20);
  const auto store = cache.AddStore();
  cache.Put(store, "k", "v");
  (void)cache.Find(store, "k");
  (void)cache.Find(store, "k");
  (void)cache.Find(store, "other");
  EXPECT_EQ(cache.stats().hits, 2U);
  EXPECT_EQ(cache.stats().misses, 1U);
}

// The cache under a task's stores: what a processor reads is always what it would read without
// one, and every byte charged is given back.
class RecordCacheTaskStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDirectory("cm-record-cache");
    state_ = Open();
  }
  void TearDown() override {
    state_.reset();
    std::filesystem::remove_all(dir_);
  }

  // The task's state over `cache` (null: the fixture's), with one key-value store "kv" unless
  // told otherwise.
  std::unique_ptr<TaskState> Open(
      std::vector<StoreSpec> stores = StoreSpec::Logged(StoreType::kKeyValue, {"kv"}),
      RecordCache* cache = nullptr) {
    TaskStateOptions options;
    options.directory = dir_.string();
    options.stores = std::move(stores);
    options.cache = cache != nullptr ? cache : &cache_;
    auto opened = TaskState::Open(options);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  KeyValueStore& kv() { return *state_->key_value_store("kv"); }

  std::vector<std::string> Range() {
    std::vector<std::string> out;
    kv().Range("", "", [&](std::string_view k, std::string_view v) {
      out.push_back(std::string(k) + "=" + std::string(v));
      return true;
    });
    return out;
  }

  std::filesystem::path dir_;
  RecordCache cache_{1 << 20};
  std::unique_ptr<TaskState> state_;
};

TEST_F(RecordCacheTaskStateTest, AReadAfterACommitIsAnsweredFromTheCacheWithTheCommittedValue) {
  kv().Put("k", "1");
  ASSERT_TRUE(state_->Commit({}).ok());
  EXPECT_EQ(kv().Get("k"), "1");  // from RocksDB, now cached
  const uint64_t hits = cache_.stats().hits;
  EXPECT_EQ(kv().Get("k"), "1");
  EXPECT_EQ(cache_.stats().hits, hits + 1);

  kv().Put("k", "2");
  EXPECT_EQ(kv().Get("k"), "2") << "a buffered write is read before the cache";
  ASSERT_TRUE(state_->Commit({}).ok());
  EXPECT_EQ(kv().Get("k"), "2");
  EXPECT_EQ(cache_.stats().hits, hits + 2) << "the commit brought the cached entry up to date";
  EXPECT_EQ(state_->committed_key_value_store("kv")->Get("k"), "2");

  kv().Delete("k");
  ASSERT_TRUE(state_->Commit({}).ok());
  EXPECT_EQ(kv().Get("k"), std::nullopt);
  EXPECT_EQ(cache_.stats().hits, hits + 3) << "a committed delete is cached as absent";
}

// The cache answers for the keys it holds whether a delete changes the committed state: a key
// cached as present keeps its delete, one cached as absent loses it.
TEST_F(RecordCacheTaskStateTest, ADeleteOfAKeyCachedAsAbsentIsDroppedAndOneCachedAsPresentKept) {
  kv().Put("present", "1");
  kv().Put("absent", "1");
  ASSERT_TRUE(state_->Commit({}).ok());
  EXPECT_EQ(kv().Get("present"), "1");  // cached
  EXPECT_EQ(kv().Get("absent"), "1");   // cached, then its delete is committed: cached as absent
  kv().Delete("absent");
  ASSERT_TRUE(state_->Commit({}).ok());

  for (const char* key : {"present", "absent"}) {
    kv().Put(key, "2");
    kv().Delete(key);
  }
  const uint64_t misses = cache_.stats().misses;
  EXPECT_EQ(state_->DropNoOpDeletes(), 1U);
  EXPECT_EQ(cache_.stats().misses, misses) << "both answered by the cache";
  EXPECT_EQ(state_->pending_change_count(), 1U);
  ASSERT_TRUE(state_->Commit({}).ok());
  EXPECT_EQ(Range(), std::vector<std::string>{});
  EXPECT_EQ(cache_.stats().buffered_bytes, 0U);
}

// A store declared with cache_writes has what a commit wrote answered from the cache at the
// first read; a store without it reads RocksDB first, and a deleted key enters neither.
TEST_F(RecordCacheTaskStateTest,
       AStoreThatCachesWritesAnswersTheFirstReadAfterACommitFromTheCache) {
  state_.reset();
  std::vector<StoreSpec> stores = StoreSpec::Logged(StoreType::kKeyValue, {"written", "read"});
  stores[0].cache_writes = true;
  state_ = Open(std::move(stores));
  ASSERT_NE(state_, nullptr);
  KeyValueStore& written = *state_->key_value_store("written");
  KeyValueStore& read = *state_->key_value_store("read");

  written.Put("k", "1");
  written.Delete("gone");
  read.Put("k", "1");
  ASSERT_TRUE(state_->Commit({}).ok());

  const uint64_t hits = cache_.stats().hits;
  const uint64_t misses = cache_.stats().misses;
  EXPECT_EQ(written.Get("k"), "1");
  EXPECT_EQ(cache_.stats().hits, hits + 1);
  EXPECT_EQ(read.Get("k"), "1");
  EXPECT_EQ(written.Get("gone"), std::nullopt);
  EXPECT_EQ(cache_.stats().misses, misses + 2) << "the other store's key and the deleted key";
}

TEST_F(RecordCacheTaskStateTest, AMultiGetReadsCachedKeysFromTheCacheAndCachesWhatItRead) {
  kv().Put("a", "1");
  kv().Put("b", "2");
  ASSERT_TRUE(state_->Commit({}).ok());
  state_.reset();  // reopened, the stores' cached entries are gone: only RocksDB has them
  state_ = Open();
  const uint64_t hits = cache_.stats().hits;
  EXPECT_EQ(kv().MultiGet({"a", "absent", "b"}),
            (std::vector<std::optional<std::string>>{"1", std::nullopt, "2"}));
  EXPECT_EQ(cache_.stats().hits, hits);
  kv().Put("b", "3");
  EXPECT_EQ(kv().MultiGet({"b", "a"}), (std::vector<std::optional<std::string>>{"3", "1"}))
      << "a buffered write is read before the cache";
  EXPECT_EQ(cache_.stats().hits, hits + 1) << "a was cached by the first MultiGet";
}

TEST_F(RecordCacheTaskStateTest, AbortedAndRolledBackWritesNeverReachTheCache) {
  kv().Put("k", "committed");
  ASSERT_TRUE(state_->Commit({}).ok());
  ASSERT_EQ(kv().Get("k"), "committed");

  kv().Put("k", "aborted");
  state_->Abort();
  EXPECT_EQ(kv().Get("k"), "committed");

  // A processor that throws: its writes since the savepoint are undone, bytes included.
  state_->SetSavepoint();
  kv().Put("k", "thrown");
  kv().Put("new", std::string(1000, 'x'));
  EXPECT_GT(cache_.stats().buffered_bytes, 1000U);
  state_->RollbackToSavepoint();
  EXPECT_EQ(cache_.stats().buffered_bytes, 0U);
  EXPECT_EQ(kv().Get("k"), "committed");
  EXPECT_EQ(kv().Get("new"), std::nullopt);
  // The key undone can be written again, read back and scanned.
  kv().Put("new", "again");
  EXPECT_EQ(kv().Get("new"), "again");
  EXPECT_EQ(Range(), (std::vector<std::string>{"k=committed", "new=again"}));
  ASSERT_TRUE(state_->Commit({}).ok());
  EXPECT_EQ(state_->committed_key_value_store("kv")->Get("k"), "committed");
  EXPECT_EQ(state_->committed_key_value_store("kv")->Get("new"), "again");
}

TEST_F(RecordCacheTaskStateTest, ScansMergeBufferedWritesOverCachedAndCommittedEntries) {
  for (const char* k : {"a", "b", "c"}) kv().Put(k, "old");
  ASSERT_TRUE(state_->Commit({}).ok());
  ASSERT_EQ(kv().Get("b"), "old");  // b and c are cached, a is not
  ASSERT_EQ(kv().Get("c"), "old");
  kv().Put("b", "new");
  kv().Delete("c");
  kv().Put("d", "new");
  EXPECT_EQ(Range(), (std::vector<std::string>{"a=old", "b=new", "d=new"}));
  ASSERT_TRUE(state_->Commit({}).ok());
  EXPECT_EQ(Range(), (std::vector<std::string>{"a=old", "b=new", "d=new"}));
  EXPECT_EQ(kv().Get("c"), std::nullopt);
}

TEST_F(RecordCacheTaskStateTest, ARestoreReplacesWhatWasCached) {
  kv().Put("k", "before");
  ASSERT_TRUE(state_->Commit({}).ok());
  ASSERT_EQ(kv().Get("k"), "before");
  ASSERT_TRUE(state_->ApplyRestored("kv", {{"k", "restored"}}, {}).ok());
  EXPECT_EQ(kv().Get("k"), "restored");
}

TEST_F(RecordCacheTaskStateTest, BufferedWritesCountUntilCommittedAndAClosedTaskGivesBackAll) {
  for (int i = 0; i < 100; ++i) kv().Put("key" + std::to_string(i), std::string(100, 'v'));
  EXPECT_EQ(state_->pending_change_count(), 100U);
  EXPECT_GE(cache_.stats().buffered_bytes, 100U * 100U);
  ASSERT_TRUE(state_->Commit({}).ok());
  EXPECT_EQ(cache_.stats().buffered_bytes, 0U);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(kv().Get("key" + std::to_string(i)).has_value());
  EXPECT_EQ(cache_.stats().entries, 10U);
  kv().Put("unsaved", "v");

  state_.reset();
  EXPECT_EQ(cache_.stats().entries, 0U);
  EXPECT_EQ(cache_.stats().clean_bytes, 0U);
  EXPECT_EQ(cache_.stats().buffered_bytes, 0U);

  state_ = Open();
  EXPECT_EQ(kv().Get("key7"), std::string(100, 'v'));
  EXPECT_EQ(kv().Get("unsaved"), std::nullopt);
}

TEST_F(RecordCacheTaskStateTest, WritesThatOutgrowTheBudgetAskForACommit) {
  RecordCache small(16 * 1024);
  state_.reset();
  state_ = Open(StoreSpec::Logged(StoreType::kKeyValue, {"kv"}), &small);
  ASSERT_NE(state_, nullptr);

  // Repeated writes to one key are buffered once.
  for (int i = 0; i < 100; ++i) kv().Put("same", std::string(1000, 'x'));
  EXPECT_FALSE(small.commit_needed());
  int keys = 1;
  while (!small.commit_needed() && keys < 100)
    kv().Put("key" + std::to_string(keys++), std::string(1000, 'x'));
  // An entry charges 1,000 bytes plus its key and the overhead: the first one that no longer
  // fits in 16 KiB ("same" and the keys after it) asks for the commit.
  const size_t charge = RecordCache::Charge("key1", std::string(1000, 'x'));
  EXPECT_EQ(static_cast<size_t>(keys), 16 * 1024 / charge + 1);
  ASSERT_TRUE(state_->Commit({}).ok());
  EXPECT_FALSE(small.commit_needed());
  state_.reset();  // before `small` goes
}

}  // namespace
}  // namespace cm::state
