#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "child_process.h"
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

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

const std::vector<StoreSpec>& AllStores() {
  static const std::vector<StoreSpec> kStores = {
      Spec("kv", StoreType::kKeyValue),
      Spec("windows", StoreType::kWindow, {.size_ms = 10}),
      Spec("timers", StoreType::kTimer),
  };
  return kStores;
}

class StateTaskStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("cm_state_task_" + std::to_string(::getpid()) + "_" +
             std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string Dir(const std::string& task) const { return (root_ / task).string(); }

  static std::unique_ptr<TaskState> Open(const std::string& dir,
                                         const std::vector<StoreSpec>& stores = AllStores(),
                                         StateResources* resources = nullptr) {
    TaskStateOptions options;
    options.directory = dir;
    options.stores = stores;
    options.resources = resources;
    auto opened = TaskState::Open(options);
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  static Status OpenStatus(const std::string& dir, const std::vector<StoreSpec>& stores) {
    TaskStateOptions options;
    options.directory = dir;
    options.stores = stores;
    return TaskState::Open(options).status();
  }

  // Everything a user can read from the three stores, in one comparable string.
  static std::string Dump(TaskState& state) {
    std::string out;
    state.key_value_store("kv")->Range("", "", [&](std::string_view k, std::string_view v) {
      out.append("kv ").append(k).append("=").append(v).append("\n");
      return true;
    });
    state.window_store("windows")->FetchAll(
        kMin, kMax, [&](std::string_view k, int64_t start, std::string_view v) {
          out.append("window ").append(k).append("@").append(std::to_string(start));
          out.append("=").append(v).append("\n");
          return true;
        });
    // Popping is the only way to list timers; Abort puts them back.
    for (const Timer& t : state.timer_store("timers")->PopDue(kMax, 1000)) {
      out.append("timer ").append(t.id).append("@").append(std::to_string(t.due_ms));
      out.append("=").append(t.payload).append("\n");
    }
    state.Abort();
    return out;
  }

  std::filesystem::path root_;
};

// The changelog of a commit, as the engine would produce it: store by store, raw entries.
using Changelog = std::map<std::string, std::vector<StoreChange>>;

Changelog Capture(const TaskState& state) {
  Changelog log;
  state.VisitPendingChanges([&](const std::string& store, const PendingChange& change) {
    log[store].push_back(change.Copy());
  });
  return log;
}

TEST_F(StateTaskStateTest, ChangelogReplayReproducesEveryStoreKind) {
  auto source = Open(Dir("source"));
  ASSERT_NE(source, nullptr);
  KeyValueStore& kv = *source->key_value_store("kv");
  WindowStore& windows = *source->window_store("windows");
  TimerStore& timers = *source->timer_store("timers");

  // Two commits, the second overwriting and deleting what the first wrote.
  std::vector<Changelog> commits;
  kv.Put("a", "1");
  kv.Put("b", "2");
  kv.Put(std::string("\0z", 2), "binary");
  windows.Put("org", -10, "w-10");
  windows.Put("org", 0, "w0");
  windows.Put("or", 0, "prefix key");
  timers.Schedule("t1", 100, "p1");
  timers.Schedule("t2", 50, "p2");
  timers.Schedule("t3", 75, "p3");
  commits.push_back(Capture(*source));
  ASSERT_TRUE(source->Commit({}).ok());

  kv.Delete("a");
  kv.Put("b", "22");
  windows.Delete("org", -10);
  windows.Put("org", 10, "w10");
  timers.Schedule("t1", 10, "p1-moved");
  EXPECT_TRUE(timers.Cancel("t3"));
  EXPECT_EQ(timers.PopDue(60, 1).size(), 1U);  // t1, now due at 10
  commits.push_back(Capture(*source));
  ASSERT_TRUE(source->Commit({}).ok());

  auto replica = Open(Dir("replica"));
  ASSERT_NE(replica, nullptr);
  std::map<std::string, size_t> offsets;  // per changelog topic
  for (const Changelog& commit : commits) {
    for (const auto& [store, changes] : commit) {
      offsets[store] += changes.size();
      const CheckpointEntries checkpoint = {{store + "-changelog", std::to_string(offsets[store])}};
      const Status s = replica->ApplyRestored(store, changes, checkpoint);
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
  }
  EXPECT_EQ(replica->pending_change_count(), 0U);

  const std::string expected = "kv " + std::string("\0z", 2) +
                               "=binary\n"
                               "kv b=22\n"
                               "window or@0=prefix key\n"
                               "window org@0=w0\n"
                               "window org@10=w10\n"
                               "timer t2@50=p2\n";
  EXPECT_EQ(Dump(*source), expected);
  EXPECT_EQ(Dump(*replica), expected);
  for (const auto& [store, offset] : offsets) {
    EXPECT_EQ(replica->GetCheckpoint(store + "-changelog"), std::to_string(offset));
  }

  // And after a restart of the replica.
  replica.reset();
  replica = Open(Dir("replica"));
  ASSERT_NE(replica, nullptr);
  EXPECT_EQ(Dump(*replica), expected);
}

TEST_F(StateTaskStateTest, PendingChangesAreRawEntriesInKeyOrderStoreByStore) {
  auto state = Open(Dir("task"));
  ASSERT_NE(state, nullptr);
  state->key_value_store("kv")->Put("b", "2");
  state->key_value_store("kv")->Put("a", "1");
  state->key_value_store("kv")->Delete("c");
  state->timer_store("timers")->Schedule("t", 5, "p");  // two raw entries
  EXPECT_EQ(state->pending_change_count(), 5U);

  std::vector<std::tuple<std::string, std::string, std::optional<std::string>>> seen;
  state->VisitPendingChanges([&](const std::string& store, const PendingChange& change) {
    seen.emplace_back(store, change.key, change.value);
  });
  ASSERT_EQ(seen.size(), 5U);
  EXPECT_EQ(seen[0],
            std::make_tuple(std::string("kv"), std::string("a"), std::optional<std::string>("1")));
  EXPECT_EQ(seen[1],
            std::make_tuple(std::string("kv"), std::string("b"), std::optional<std::string>("2")));
  EXPECT_EQ(seen[2],
            std::make_tuple(std::string("kv"), std::string("c"), std::optional<std::string>()));
  EXPECT_EQ(std::get<0>(seen[3]), "timers");
  EXPECT_EQ(std::get<0>(seen[4]), "timers");

  state->Abort();
  EXPECT_EQ(state->pending_change_count(), 0U);
  size_t visited = 0;
  state->VisitPendingChanges([&](const std::string&, const PendingChange&) { ++visited; });
  EXPECT_EQ(visited, 0U);
}

// A timer set and fired within one commit (a webhook attempt's lease, a mail sent at once) was
// never committed: its deletes change nothing, so the commit carries no changelog record for
// it. A timer fired after it was committed still leaves its deletes, for replicas to apply.
TEST_F(StateTaskStateTest, ATimerSetAndFiredWithinOneCommitLeavesNoChangelogRecord) {
  auto state = Open(Dir("task"));
  ASSERT_NE(state, nullptr);
  TimerStore& timers = *state->timer_store("timers");
  timers.Schedule("committed", 10, "");
  ASSERT_TRUE(state->Commit({}).ok());

  timers.Schedule("fleeting", 20, "");
  timers.Schedule("fleeting", 30, "");  // moved within the commit too
  ASSERT_EQ(timers.PopDue(100, 10).size(), 2U);
  EXPECT_EQ(state->DropNoOpDeletes(), 3U) << "two due entries and the id entry of 'fleeting'";
  const Changelog log = Capture(*state);
  ASSERT_EQ(log.size(), 1U);
  ASSERT_EQ(log.at("timers").size(), 2U) << "the due and id entries of 'committed'";
  for (const StoreChange& change : log.at("timers")) {
    EXPECT_EQ(change.value, std::nullopt);
    EXPECT_NE(change.key.find("committed"), std::string::npos) << change.key;
  }

  ASSERT_TRUE(state->Commit({}).ok());
  EXPECT_EQ(timers.Get("committed"), std::nullopt);
  EXPECT_EQ(timers.Get("fleeting"), std::nullopt);
  EXPECT_EQ(timers.NextDue(), std::nullopt);
}

TEST_F(StateTaskStateTest, CheckpointIsCommittedWithTheStoresAndSurvivesReopen) {
  auto state = Open(Dir("task"));
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->GetCheckpoint("offset"), std::nullopt);
  state->key_value_store("kv")->Put("k", "v");
  ASSERT_TRUE(state->Commit({{"offset", "10"}, {"other", "x"}}).ok());
  ASSERT_TRUE(state->Commit({{"offset", "11"}}).ok());  // checkpoint only
  state.reset();

  state = Open(Dir("task"));
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->GetCheckpoint("offset"), "11");
  EXPECT_EQ(state->GetCheckpoint("other"), "x");
  EXPECT_EQ(state->key_value_store("kv")->Get("k"), "v");
}

// Whether a read-only view of the task directory shows checkpoint `offset` at `value`: only a
// flush puts it there (read-only views see no memtable of the writer). Checkpoint entries are
// the database's keys that start with a NUL byte.
bool FlushedCheckpoint(const std::string& dir, const std::string& value) {
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::OpenForReadOnly({}, dir, &raw).ok()) return false;
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string offset;
  const bool found = db->Get({}, std::string("\0offset", 7), &offset).ok();
  return found && offset == value;
}

// Runs `write` on the task state in a directory of its own, in a process of its own, which
// then dies by SIGKILL; returns the directory, to reopen what that process left. A gtest death
// test re-executes the binary for the statement ("threadsafe"), since a forked child of a
// process with RocksDB's threads would wait forever on their locks; the re-executed child,
// whose SetUp picked another directory, gets `own_dir` through the environment.
std::string WriteAndDie(const std::string& own_dir,
                        const std::function<void(TaskState&, const std::string& dir)>& write) {
  constexpr const char* kVar = "CM_DEATH_TEST_DIR";
  const char* inherited = std::getenv(kVar);
  const std::string dir = inherited ? inherited : own_dir;
  ::setenv(kVar, dir.c_str(), 1);
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto write_then_die = [&] {
    TaskStateOptions options;
    options.directory = dir;
    options.stores = AllStores();
    auto opened = TaskState::Open(options);
    if (!opened.ok()) ::_exit(2);
    write(**opened, dir);
    ::kill(::getpid(), SIGKILL);
  };
  EXPECT_EXIT(write_then_die(), ::testing::KilledBySignal(SIGKILL), "");
  ::unsetenv(kVar);
  return dir;
}

// No write-ahead log: a process killed with SIGKILL leaves its state as of the last flush, the
// stores and the checkpoint at one point, and the restore reads the rest back from the
// changelogs.
TEST_F(StateTaskStateTest, AfterSigkillTheStateIsTheLastFlushWithItsCheckpoint) {
  const std::string dir = WriteAndDie(Dir("task"), [](TaskState& state, const std::string&) {
    state.key_value_store("kv")->Put("flushed", "1");
    if (!state.Commit({{"offset", "10"}}).ok() || !state.Flush(true).ok()) ::_exit(3);
    state.key_value_store("kv")->Put("flushed", "2");
    state.key_value_store("kv")->Put("unflushed", "x");
    if (!state.Commit({{"offset", "20"}}).ok()) ::_exit(4);
  });
  auto state = Open(dir);
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->GetCheckpoint("offset"), "10");
  EXPECT_EQ(state->key_value_store("kv")->Get("flushed"), "1");
  EXPECT_EQ(state->key_value_store("kv")->Get("unflushed"), std::nullopt);
}

// Past kFlushChanges writes a task's database flushes on its own, so a crash never makes a
// restore read back more than about that many changes per task. The writer waits until a
// read-only view shows the big commit, then dies.
TEST_F(StateTaskStateTest, ManyWritesFlushWithoutBeingAsked) {
  const std::string dir = WriteAndDie(Dir("task"), [](TaskState& state, const std::string& dir) {
    for (uint64_t i = 0; i < kFlushChanges; ++i)
      state.key_value_store("kv")->Put("k" + std::to_string(i), "v");
    if (!state.Commit({{"offset", "1"}}).ok()) ::_exit(3);
    state.key_value_store("kv")->Put("unflushed", "v");
    if (!state.Commit({{"offset", "2"}}).ok()) ::_exit(4);
    if (!cm::testing::WaitFor([&] { return FlushedCheckpoint(dir, "1"); },
                              std::chrono::seconds(30)))
      ::_exit(5);  // never flushed
  });
  auto state = Open(dir);
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->GetCheckpoint("offset"), "1");
  EXPECT_EQ(state->key_value_store("kv")->Get("k0"), "v");
  EXPECT_EQ(state->key_value_store("kv")->Get("k" + std::to_string(kFlushChanges - 1)), "v");
  EXPECT_EQ(state->key_value_store("kv")->Get("unflushed"), std::nullopt);
}

// A restore ends with a flush that does not wait, and a task may close right after it: the
// close must not drop the memtable that flush still had queued (ops/bench/restore once found
// 894,928 of 1,000,000 restored entries in the closed stores).
TEST_F(StateTaskStateTest, ClosingRightAfterABackgroundFlushKeepsEveryWrite) {
  for (int round = 0; round < 20; ++round) {
    const std::string dir = Dir("task" + std::to_string(round));
    {
      auto state = Open(dir);
      ASSERT_NE(state, nullptr);
      std::vector<StoreChange> changes;
      for (uint64_t i = 0; i <= kFlushChanges; ++i)
        changes.push_back({"k" + std::to_string(i), std::string("v")});
      ASSERT_TRUE(state->ApplyRestored("kv", changes, {{"offset", "1"}}).ok());
      ASSERT_TRUE(state->ApplyRestored("kv", {{"last", std::string("v")}}, {{"offset", "2"}}).ok());
      ASSERT_TRUE(state->Flush(false).ok());
    }
    auto state = Open(dir);
    ASSERT_NE(state, nullptr);
    size_t entries = 0;
    state->key_value_store("kv")->Range("", "", [&](std::string_view, std::string_view) {
      ++entries;
      return true;
    });
    ASSERT_EQ(entries, kFlushChanges + 2) << "round " << round;
    EXPECT_EQ(state->GetCheckpoint("offset"), "2");
  }
}

// A restore prepares its writes on the stream thread and runs them on a writer thread.
TEST_F(StateTaskStateTest, ARestoreWritePreparedOnOneThreadRunsOnAnother) {
  auto state = Open(Dir("task"));
  ASSERT_NE(state, nullptr);
  std::vector<StoreChange> changes;
  for (int i = 0; i < 100; ++i) changes.push_back({"k" + std::to_string(99 - i), std::string("v")});
  changes.push_back({"k5", std::string("last")});  // a key changed twice keeps its last value
  auto write = state->PrepareRestore("kv", std::move(changes), {{"offset", "101"}});
  ASSERT_TRUE(write.ok()) << write.status().ToString();
  // Nothing is written before the write runs.
  EXPECT_FALSE(state->key_value_store("kv")->Get("k5").has_value());
  EXPECT_FALSE(state->GetCheckpoint("offset").has_value());
  Status written;
  std::thread writer([&] { written = (*write)(); });
  writer.join();
  ASSERT_TRUE(written.ok()) << written.ToString();
  EXPECT_EQ(state->key_value_store("kv")->Get("k5"), "last");
  EXPECT_EQ(state->key_value_store("kv")->Get("k0"), "v");
  EXPECT_EQ(state->GetCheckpoint("offset"), "101");
}

// A commit prepares its write on the stream thread, runs it on a writer thread, and the stream
// thread takes it in afterwards (the record cache's entries included).
TEST_F(StateTaskStateTest, ACommitWritePreparedOnOneThreadRunsOnAnother) {
  RecordCache cache(1 << 20);
  TaskStateOptions options;
  options.directory = Dir("task");
  options.stores = AllStores();
  options.cache = &cache;
  auto opened = TaskState::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  TaskState& state = *opened.value();
  KeyValueStore& kv = *state.key_value_store("kv");
  kv.Put("k", "old");
  ASSERT_TRUE(state.Commit({{"offset", "1"}}).ok());
  ASSERT_EQ(kv.Get("k"), "old");  // cached now

  kv.Put("k", "new");
  kv.Put("j", "added");
  TaskState::StateWrite write = state.PrepareCommit({{"offset", "2"}});
  // Nothing is written before the write runs.
  EXPECT_EQ(state.committed_key_value_store("kv")->Get("k"), "old");
  EXPECT_EQ(state.GetCheckpoint("offset"), "1");
  Status written;
  std::thread writer([&] { written = write(); });
  writer.join();
  ASSERT_TRUE(written.ok()) << written.ToString();
  EXPECT_EQ(state.committed_key_value_store("kv")->Get("k"), "new");
  EXPECT_EQ(state.committed_key_value_store("kv")->Get("j"), "added");
  EXPECT_EQ(state.GetCheckpoint("offset"), "2");
  EXPECT_EQ(state.pending_change_count(), 2u) << "the buffer is kept until CommitWritten";

  state.CommitWritten();
  EXPECT_EQ(state.pending_change_count(), 0u);
  EXPECT_EQ(kv.Get("k"), "new") << "the record cache kept the value the commit replaced";
  EXPECT_EQ(kv.Get("j"), "added");
}

TEST_F(StateTaskStateTest, ApplyRestoredRejectsUnknownStore) {
  auto state = Open(Dir("task"));
  ASSERT_NE(state, nullptr);
  const Status s = state->ApplyRestored("nope", {{"k", "v"}}, {});
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
}

TEST_F(StateTaskStateTest, TwoTaskStatesShareOneStateResources) {
  StateResources resources(size_t{32} << 20);
  EXPECT_EQ(resources.memory_bytes(), size_t{32} << 20);
  auto first = Open(Dir("0_0"), AllStores(), &resources);
  auto second = Open(Dir("0_1"), AllStores(), &resources);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);

  first->key_value_store("kv")->Put("k", "first");
  second->key_value_store("kv")->Put("k", "second");
  ASSERT_TRUE(first->Commit({{"offset", "1"}}).ok());
  ASSERT_TRUE(second->Commit({{"offset", "2"}}).ok());
  first.reset();
  second.reset();

  first = Open(Dir("0_0"), AllStores(), &resources);
  second = Open(Dir("0_1"), AllStores(), &resources);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(first->key_value_store("kv")->Get("k"), "first");
  EXPECT_EQ(second->key_value_store("kv")->Get("k"), "second");
  EXPECT_EQ(first->GetCheckpoint("offset"), "1");
  EXPECT_EQ(second->GetCheckpoint("offset"), "2");
}

TEST_F(StateTaskStateTest, StoresNoLongerDeclaredAreKept) {
  const std::vector<StoreSpec> both = {Spec("kv", StoreType::kKeyValue),
                                       Spec("old", StoreType::kKeyValue)};
  auto state = Open(Dir("task"), both);
  ASSERT_NE(state, nullptr);
  state->key_value_store("old")->Put("k", "kept");
  ASSERT_TRUE(state->Commit({}).ok());
  state.reset();

  state = Open(Dir("task"), {Spec("kv", StoreType::kKeyValue)});
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->key_value_store("old"), nullptr);
  EXPECT_EQ(state->stores().size(), 1U);
  state.reset();

  state = Open(Dir("task"), both);
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->key_value_store("old")->Get("k"), "kept");
}

// The stores of a task share one database: whatever their names and keys, none sees another's
// entries, in point reads, bounded and unbounded scans, committed or buffered.
TEST_F(StateTaskStateTest, StoresWithNestedNamesAndExtremeKeysStayApart) {
  const std::vector<StoreSpec> stores = {Spec("a", StoreType::kKeyValue),
                                         Spec("ab", StoreType::kKeyValue),
                                         Spec(std::string("a\x01"), StoreType::kKeyValue)};
  auto state = Open(Dir("task"), stores);
  ASSERT_NE(state, nullptr);
  const std::vector<std::string> keys = {"", std::string(1, '\0'), "b", "\xff\xff"};
  for (const StoreSpec& spec : stores) {
    for (const std::string& key : keys) state->key_value_store(spec.name)->Put(key, spec.name);
  }
  for (const bool committed : {false, true}) {
    if (committed) {
      ASSERT_TRUE(state->Commit({{"b", "checkpoint"}}).ok());
      state.reset();
      state = Open(Dir("task"), stores);
      ASSERT_NE(state, nullptr);
    }
    for (const StoreSpec& spec : stores) {
      KeyValueStore& store = *state->key_value_store(spec.name);
      std::vector<std::string> seen;
      store.Range("", "", [&](std::string_view key, std::string_view value) {
        EXPECT_EQ(value, spec.name) << "key " << key;
        seen.emplace_back(key);
        return true;
      });
      EXPECT_EQ(seen, keys) << spec.name << (committed ? " committed" : " buffered");
      EXPECT_EQ(store.Get("b"), spec.name);
      size_t prefixed = 0;
      store.PrefixScan("\xff", [&](std::string_view, std::string_view) {
        ++prefixed;
        return true;
      });
      EXPECT_EQ(prefixed, 1U) << spec.name;
    }
  }
  EXPECT_EQ(state->GetCheckpoint("b"), "checkpoint");
}

// A directory written by the layout with a column family per store is rebuilt: its stores come
// back from their changelogs, as on an instance that never had the task.
TEST_F(StateTaskStateTest, ADirectoryOfTheFamilyPerStoreLayoutStartsEmpty) {
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}}, {"__checkpoint", {}}, {"kv", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    std::filesystem::create_directories(Dir("task"));
    ASSERT_TRUE(rocksdb::DB::Open(options, Dir("task"), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put({}, handles[1], "offset", "42").ok());
    ASSERT_TRUE(db->Put({}, handles[2], "k", "old").ok());
    for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  }
  auto state = Open(Dir("task"));
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->GetCheckpoint("offset"), std::nullopt);
  EXPECT_EQ(state->key_value_store("kv")->Get("k"), std::nullopt);
  state->key_value_store("kv")->Put("k", "new");
  ASSERT_TRUE(state->Commit({{"offset", "1"}}).ok());
  state.reset();
  state = Open(Dir("task"));
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->key_value_store("kv")->Get("k"), "new");
  EXPECT_EQ(state->GetCheckpoint("offset"), "1");
}

TEST_F(StateTaskStateTest, AnEntryAStoreCannotDecodeThrowsStoreFailure) {
  // A corrupted value read from RocksDB is a store failure (the task fails), not an error of
  // the record being processed. The corruption: raw bytes in the column family that a timer
  // store then reads, written through a key-value store of the same name.
  auto state = Open(Dir("task"), {Spec("timers", StoreType::kKeyValue)});
  ASSERT_NE(state, nullptr);
  state->key_value_store("timers")->Put("it1", "short");  // 'i' + id -> due (8 bytes) + payload
  ASSERT_TRUE(state->Commit({}).ok());
  state.reset();

  state = Open(Dir("task"), {Spec("timers", StoreType::kTimer)});
  ASSERT_NE(state, nullptr);
  EXPECT_THROW((void)state->timer_store("timers")->Get("t1"), StoreFailure);
  EXPECT_FALSE(state->timer_store("timers")->Get("absent").has_value());
}

TEST_F(StateTaskStateTest, OpenRejectsInvalidStoreDeclarations) {
  const auto kv = [](const std::string& name) { return Spec(name, StoreType::kKeyValue); };
  EXPECT_EQ(OpenStatus(Dir("a"), {kv("x"), kv("x")}).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(OpenStatus(Dir("b"), {kv(std::string("a\0b", 3))}).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(OpenStatus(Dir("d"), {kv("")}).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(OpenStatus(Dir("e"), {Spec("w", StoreType::kWindow, {.size_ms = 0})}).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(OpenStatus("", {kv("x")}).code(), Status::Code::kInvalidArgument);
}

TEST_F(StateTaskStateTest, OpenFailsWithStatusWhenDirectoryIsInUse) {
  auto state = Open(Dir("task"));
  ASSERT_NE(state, nullptr);
  const Status s = OpenStatus(Dir("task"), AllStores());
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
}

TEST_F(StateTaskStateTest, OpenFailsWithStatusWhenDirectoryCannotBeCreated) {
  std::filesystem::create_directories(root_);
  const std::string file = (root_ / "file").string();
  { std::ofstream(file) << "not a directory"; }
  const Status s = OpenStatus(file + "/task", AllStores());
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
}

// An assignment opens its tasks' states together: each result is its own task's, a task whose
// directory is unusable fails alone, the states opened hold what was committed before, and the
// thread's record cache keeps each store's entries apart (its stores are registered from
// several threads at once).
TEST_F(StateTaskStateTest, OpenAllOpensEachTaskInItsPlaceAndFailsOnlyTheUnusableOne) {
  constexpr int kTasks = 20;  // more than the threads OpenAll uses
  std::filesystem::create_directories(root_);
  const std::string file = (root_ / "file").string();
  { std::ofstream(file) << "not a directory"; }
  for (int i = 0; i < kTasks; i += 2) {  // every other task has committed state already
    auto state = Open(Dir("t" + std::to_string(i)));
    ASSERT_NE(state, nullptr);
    state->key_value_store("kv")->Put("task", std::to_string(i));
    ASSERT_TRUE(state->Commit({{"offset", std::to_string(i)}}).ok());
  }
  constexpr int kUnusable = 7;
  RecordCache cache(1 << 20);
  std::vector<TaskStateOptions> options(kTasks);
  for (int i = 0; i < kTasks; ++i) {
    options[i].directory = i == kUnusable ? file + "/task" : Dir("t" + std::to_string(i));
    options[i].stores = AllStores();
    options[i].cache = &cache;
  }

  auto states = TaskState::OpenAll(options);
  ASSERT_EQ(states.size(), static_cast<size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) {
    if (i == kUnusable) {
      EXPECT_EQ(states[i].status().code(), Status::Code::kIOError) << states[i].status().ToString();
      continue;
    }
    ASSERT_TRUE(states[i].ok()) << i << ": " << states[i].status().ToString();
    TaskState& state = *states[i].value();
    const auto value = state.key_value_store("kv")->Get("task");
    if (i % 2 == 0) {
      EXPECT_EQ(value, std::to_string(i));
      EXPECT_EQ(state.GetCheckpoint("offset"), std::to_string(i));
    } else {
      EXPECT_EQ(value, std::nullopt);
    }
  }
  // Read again, every task's key comes from the cache, and each is still the task's own.
  const uint64_t hits = cache.stats().hits;
  for (int i = 0; i < kTasks; i += 2) {
    EXPECT_EQ(states[i].value()->key_value_store("kv")->Get("task"), std::to_string(i));
  }
  EXPECT_EQ(cache.stats().hits, hits + kTasks / 2);
  EXPECT_TRUE(TaskState::OpenAll({}).empty());
}

TEST_F(StateTaskStateTest, DestroyRemovesTheDirectory) {
  auto state = Open(Dir("task"));
  ASSERT_NE(state, nullptr);
  state->key_value_store("kv")->Put("k", "v");
  ASSERT_TRUE(state->Commit({{"offset", "1"}}).ok());
  EXPECT_FALSE(TaskState::Destroy(Dir("task")).ok()) << "an open state must not be destroyed";
  state.reset();

  ASSERT_TRUE(TaskState::Destroy(Dir("task")).ok());
  EXPECT_FALSE(std::filesystem::exists(Dir("task")));
  EXPECT_TRUE(TaskState::Destroy(Dir("task")).ok()) << "destroying nothing is fine";

  state = Open(Dir("task"));
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->key_value_store("kv")->Get("k"), std::nullopt);
  EXPECT_EQ(state->GetCheckpoint("offset"), std::nullopt);
}

TEST_F(StateTaskStateTest, ApproximateSizesGrowWithCommittedData) {
  auto state = Open(Dir("task"));
  ASSERT_NE(state, nullptr);
  EXPECT_EQ(state->ApproximateNumEntries(), 0U);
  for (int i = 0; i < 100; ++i) {
    state->key_value_store("kv")->Put("key" + std::to_string(i), std::string(100, 'x'));
  }
  EXPECT_GE(state->ApproximateNumEntries(), 100U);  // the buffered entries count
  ASSERT_TRUE(state->Commit({}).ok());
  EXPECT_GT(state->ApproximateNumEntries(), 0U);
  EXPECT_GT(state->ApproximateSizeBytes(), 100U * 100U);
}

}  // namespace
}  // namespace cm::state

namespace cm::state {
namespace {

TEST_F(StateTaskStateTest, CommittedViewsSeeOnlyCommittedStateAndServeOtherThreads) {
  auto state = Open(Dir("task"));
  KeyValueStore* kv = state->key_value_store("kv");
  WindowStore* windows = state->window_store("windows");
  ReadOnlyKeyValueStore* committed_kv = state->committed_key_value_store("kv");
  ReadOnlyWindowStore* committed_windows = state->committed_window_store("windows");
  ASSERT_NE(committed_kv, nullptr);
  ASSERT_NE(committed_windows, nullptr);
  EXPECT_EQ(state->committed_key_value_store("windows"), nullptr);

  kv->Put("a", "1");
  windows->Put("a", 10, "w");
  EXPECT_EQ(committed_kv->Get("a"), std::nullopt) << "buffered writes must not be visible";
  EXPECT_EQ(committed_windows->Get("a", 10), std::nullopt);
  ASSERT_TRUE(state->Commit({}).ok());
  EXPECT_EQ(committed_kv->Get("a"), "1");
  EXPECT_EQ(committed_windows->Get("a", 10), "w");

  // A reader thread scans while the owning thread keeps committing; every scan sees a
  // consistent, growing prefix of the committed keys.
  std::atomic<bool> done{false};
  std::atomic<int> scans{0};
  std::atomic<bool> saw_gap{false};
  std::thread reader([&] {
    while (!done) {
      int n = 0;
      committed_kv->PrefixScan("k", [&](std::string_view key, std::string_view) {
        if (key != "k" + std::string(6 - std::to_string(n).size(), '0') + std::to_string(n))
          saw_gap = true;
        ++n;
        return true;
      });
      ++scans;
    }
  });
  for (int i = 0; i < 2000; ++i) {
    std::string n = std::to_string(i);
    kv->Put("k" + std::string(6 - n.size(), '0') + n, "v");
    if (i % 50 == 49) {
      ASSERT_TRUE(state->Commit({}).ok());
    }
  }
  ASSERT_TRUE(testing::WaitFor([&] { return scans > 2; }, std::chrono::seconds(10)));
  done = true;
  reader.join();
  EXPECT_FALSE(saw_gap);
  int total = 0;
  committed_kv->PrefixScan("k", [&](std::string_view, std::string_view) { return ++total, true; });
  EXPECT_EQ(total, 2000);
}

}  // namespace
}  // namespace cm::state
