#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "state/task_state.h"

namespace cm::state {
namespace {

// StoreSpec by field: designated initializers that skip a field trip -Wmissing-field-initializers.
StoreSpec Spec(std::string name, StoreType type, WindowSpec window = {}) {
  StoreSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  spec.window = window;
  return spec;
}

using Entries = std::vector<std::pair<std::string, std::string>>;

class StateKeyValueStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cm_state_kv_" + std::to_string(::getpid()) + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    Reopen();
  }
  void TearDown() override {
    state_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Reopen() {
    state_.reset();  // closes the database before it is opened again
    TaskStateOptions options;
    options.directory = dir_.string();
    options.stores = {Spec("kv", StoreType::kKeyValue)};
    auto opened = TaskState::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    state_ = std::move(opened).value();
    store_ = state_->key_value_store("kv");
    ASSERT_NE(store_, nullptr);
  }

  void Commit() {
    const Status s = state_->Commit({});
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  Entries Range(std::string_view begin, std::string_view end) {
    Entries out;
    store_->Range(begin, end, [&](std::string_view k, std::string_view v) {
      out.emplace_back(k, v);
      return true;
    });
    return out;
  }

  Entries Prefix(std::string_view prefix) {
    Entries out;
    store_->PrefixScan(prefix, [&](std::string_view k, std::string_view v) {
      out.emplace_back(k, v);
      return true;
    });
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<TaskState> state_;
  KeyValueStore* store_ = nullptr;
};

TEST_F(StateKeyValueStoreTest, ReadsItsOwnWritesBeforeCommit) {
  EXPECT_EQ(store_->name(), "kv");
  EXPECT_EQ(store_->Get("a"), std::nullopt);
  store_->Put("a", "1");
  EXPECT_EQ(store_->Get("a"), "1");
  store_->Put("a", "2");
  EXPECT_EQ(store_->Get("a"), "2");
  store_->Delete("a");
  EXPECT_EQ(store_->Get("a"), std::nullopt);
  EXPECT_EQ(state_->pending_change_count(), 1U);
}

TEST_F(StateKeyValueStoreTest, MultiGetAnswersWhatGetAnswersForEachKeyInTheOrderAsked) {
  store_->Put("flushed", "f");
  store_->Put("committed", "c");
  store_->Put("deleted later", "d");
  store_->Put(std::string("bin\0key", 7), std::string("v\0", 2));
  Commit();
  ASSERT_TRUE(state_->Flush(true).ok());  // some answers come from an SST file
  store_->Put("in memtable", "m");
  Commit();
  store_->Put("committed", "overwritten, buffered");
  store_->Delete("deleted later");
  store_->Put("buffered", "b");

  const std::vector<std::string> keys = {"never written",
                                         "buffered",
                                         "flushed",
                                         "committed",
                                         "deleted later",
                                         "in memtable",
                                         std::string("bin\0key", 7),
                                         "flushed"};
  const std::vector<std::optional<std::string>> got = store_->MultiGet(keys);
  ASSERT_EQ(got.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(got[i], store_->Get(keys[i])) << keys[i];
  EXPECT_EQ(got[0], std::nullopt);
  EXPECT_EQ(got[1], "b");
  EXPECT_EQ(got[2], "f");
  EXPECT_EQ(got[3], "overwritten, buffered");
  EXPECT_EQ(got[4], std::nullopt);
  EXPECT_EQ(got[5], "m");
  EXPECT_EQ(got[6], std::string("v\0", 2));
  EXPECT_EQ(got[7], "f");
  EXPECT_TRUE(store_->MultiGet({}).empty());
}

TEST_F(StateKeyValueStoreTest, AbortDiscardsBufferedWrites) {
  store_->Put("kept", "committed");
  store_->Put("gone", "committed");
  Commit();

  store_->Put("kept", "overwritten");
  store_->Delete("gone");
  store_->Put("new", "x");
  state_->Abort();

  EXPECT_EQ(state_->pending_change_count(), 0U);
  EXPECT_EQ(store_->Get("kept"), "committed");
  EXPECT_EQ(store_->Get("gone"), "committed");
  EXPECT_EQ(store_->Get("new"), std::nullopt);
}

// A record that fails takes its deletes back with its writes: the ones listed before its
// savepoint are still dropped, the ones it made are neither dropped nor looked at (one of them
// was of a key the rollback erased from the buffer).
TEST_F(StateKeyValueStoreTest, DeletesOfARolledBackRecordAreNotDroppedAndEarlierOnesAre) {
  store_->Put("earlier", "x");
  store_->Delete("earlier");  // before the savepoint: a delete of a key never committed
  store_->Put("kept", "1");
  state_->SetSavepoint();
  store_->Put("fresh", "x");  // new in the failed record
  store_->Delete("fresh");
  store_->Delete("kept");
  state_->RollbackToSavepoint();
  EXPECT_EQ(state_->DropNoOpDeletes(), 1U);

  std::vector<std::pair<std::string, std::optional<std::string>>> changes;
  state_->VisitPendingChanges([&](const std::string&, const PendingChange& change) {
    changes.emplace_back(change.key, change.value);
  });
  const std::vector<std::pair<std::string, std::optional<std::string>>> expected = {{"kept", "1"}};
  EXPECT_EQ(changes, expected);
  Commit();
  Reopen();
  EXPECT_EQ(store_->Get("kept"), "1");
  EXPECT_EQ(store_->Get("fresh"), std::nullopt);
}

// Only a delete that leaves the committed state as it is goes: one of a key written since the
// last commit and never committed. Deletes of committed keys stay, however often the key was
// written in between.
TEST_F(StateKeyValueStoreTest, DeletesOfKeysNeverCommittedAreDroppedBeforeTheCommit) {
  store_->Put("old", "1");
  Commit();

  store_->Put("new", "x");
  store_->Delete("new");
  for (int i = 0; i < 2; ++i) {
    store_->Put("twice", "x");
    store_->Delete("twice");
  }
  store_->Delete("old");
  store_->Put("old", "2");
  store_->Delete("old");
  store_->Put("kept", "y");
  store_->Put("back", "z");
  store_->Delete("back");
  store_->Put("back", "again");  // written once more after its delete: a put, kept
  EXPECT_EQ(state_->DropNoOpDeletes(), 2U);

  std::vector<std::pair<std::string, std::optional<std::string>>> changes;
  state_->VisitPendingChanges([&](const std::string&, const PendingChange& change) {
    changes.emplace_back(change.key, change.value);
  });
  const std::vector<std::pair<std::string, std::optional<std::string>>> expected = {
      {"back", "again"}, {"kept", "y"}, {"old", std::nullopt}};
  EXPECT_EQ(changes, expected);

  Commit();
  Reopen();
  EXPECT_EQ(store_->Get("old"), std::nullopt);
  EXPECT_EQ(store_->Get("new"), std::nullopt);
  EXPECT_EQ(store_->Get("twice"), std::nullopt);
  EXPECT_EQ(Range("", ""), (Entries{{"back", "again"}, {"kept", "y"}}));
}

TEST_F(StateKeyValueStoreTest, CommitPersistsAcrossReopenWithCheckpoint) {
  store_->Put("a", "1");
  store_->Put(std::string("bin\0key", 7), std::string("v\0", 2));
  ASSERT_TRUE(state_->Commit({{"kv-changelog-0", "42"}}).ok());
  EXPECT_EQ(state_->pending_change_count(), 0U);
  store_->Put("uncommitted", "lost");

  Reopen();
  EXPECT_EQ(store_->Get("a"), "1");
  EXPECT_EQ(store_->Get(std::string("bin\0key", 7)), std::string("v\0", 2));
  EXPECT_EQ(store_->Get("uncommitted"), std::nullopt);
  EXPECT_EQ(state_->GetCheckpoint("kv-changelog-0"), "42");
  EXPECT_EQ(state_->GetCheckpoint("other"), std::nullopt);
}

TEST_F(StateKeyValueStoreTest, DeleteOfCommittedKeyIsPersistedByCommit) {
  store_->Put("a", "1");
  Commit();
  store_->Delete("a");
  EXPECT_EQ(store_->Get("a"), std::nullopt);
  Commit();
  Reopen();
  EXPECT_EQ(store_->Get("a"), std::nullopt);
}

TEST_F(StateKeyValueStoreTest, RangeMergesBufferedAndCommittedEntries) {
  for (const char* key : {"a", "c", "e", "g"}) store_->Put(key, std::string("old-") + key);
  Commit();
  store_->Put("b", "new-b");  // only buffered
  store_->Put("c", "new-c");  // shadows a committed value
  store_->Delete("e");        // hides a committed value
  store_->Delete("f");        // deleting a missing key hides nothing
  store_->Put("h", "new-h");

  EXPECT_EQ(Range("b", "g"), (Entries{{"b", "new-b"}, {"c", "new-c"}}));
  EXPECT_EQ(
      Range("", ""),
      (Entries{{"a", "old-a"}, {"b", "new-b"}, {"c", "new-c"}, {"g", "old-g"}, {"h", "new-h"}}));
  EXPECT_EQ(Range("c", ""), (Entries{{"c", "new-c"}, {"g", "old-g"}, {"h", "new-h"}}));
  EXPECT_EQ(Range("d", "d"), Entries{});

  // The same view after the commit.
  Commit();
  Reopen();
  EXPECT_EQ(Range("b", "g"), (Entries{{"b", "new-b"}, {"c", "new-c"}}));
}

TEST_F(StateKeyValueStoreTest, RangeStopsWhenVisitorReturnsFalse) {
  store_->Put("a", "1");
  store_->Put("c", "3");
  Commit();
  store_->Put("b", "2");
  Entries seen;
  store_->Range("", "", [&](std::string_view k, std::string_view v) {
    seen.emplace_back(k, v);
    return seen.size() < 2;
  });
  EXPECT_EQ(seen, (Entries{{"a", "1"}, {"b", "2"}}));
}

TEST_F(StateKeyValueStoreTest, VisitorMayDeleteTheEntryItVisits) {
  for (const char* key : {"a", "b", "c"}) store_->Put(key, "committed");
  Commit();
  store_->Put("d", "buffered");
  store_->Range("", "", [&](std::string_view k, std::string_view) {
    store_->Delete(k);
    return true;
  });
  EXPECT_EQ(Range("", ""), Entries{});
  EXPECT_EQ(state_->pending_change_count(), 4U);
}

TEST_F(StateKeyValueStoreTest, PrefixScanMergesBufferedAndCommittedEntries) {
  store_->Put("user:1", "one");
  store_->Put("user:2", "two");
  store_->Put("user;", "after the prefix");
  store_->Put("usex", "other");
  store_->Put("use", "shorter");
  Commit();
  store_->Put("user:10", "ten");
  store_->Delete("user:2");
  store_->Put("user:", "exactly the prefix");

  EXPECT_EQ(Prefix("user:"),
            (Entries{{"user:", "exactly the prefix"}, {"user:1", "one"}, {"user:10", "ten"}}));
  EXPECT_EQ(Prefix("nobody"), Entries{});
  EXPECT_EQ(Prefix("").size(), 6U);  // everything but the deleted user:2
}

TEST_F(StateKeyValueStoreTest, PrefixScanHandlesHighBytes) {
  const std::string ff("\xff", 1);
  store_->Put(ff, "a");
  store_->Put(ff + ff, "b");
  store_->Put(ff + "\x01", "c");
  store_->Put("\xfe", "d");
  Commit();
  store_->Put(ff + ff + "x", "e");
  EXPECT_EQ(Prefix(ff),
            (Entries{{ff, "a"}, {ff + "\x01", "c"}, {ff + ff, "b"}, {ff + ff + "x", "e"}}));
  EXPECT_EQ(Prefix(ff + ff), (Entries{{ff + ff, "b"}, {ff + ff + "x", "e"}}));
}

TEST_F(StateKeyValueStoreTest, HandleIsNullForUnknownNameOrOtherType) {
  EXPECT_EQ(state_->key_value_store("missing"), nullptr);
  EXPECT_EQ(state_->window_store("kv"), nullptr);
  EXPECT_EQ(state_->timer_store("kv"), nullptr);
}

}  // namespace
}  // namespace cm::state
