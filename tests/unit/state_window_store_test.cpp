#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <limits>
#include <string>
#include <tuple>
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

using Window = std::tuple<std::string, int64_t, std::string>;  // key, start, value
using Windows = std::vector<Window>;

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

TEST(StateWindowSpecTest, TimestampAtBoundaryBelongsToLaterWindow) {
  const WindowSpec spec{.size_ms = 60'000};
  EXPECT_EQ(spec.WindowStart(0), 0);
  EXPECT_EQ(spec.WindowStart(59'999), 0);
  EXPECT_EQ(spec.WindowStart(60'000), 60'000);
  EXPECT_EQ(spec.WindowStart(60'001), 60'000);
}

TEST(StateWindowSpecTest, NegativeTimestampsFloorToEarlierWindow) {
  const WindowSpec spec{.size_ms = 60'000};
  EXPECT_EQ(spec.WindowStart(-1), -60'000);
  EXPECT_EQ(spec.WindowStart(-60'000), -60'000);
  EXPECT_EQ(spec.WindowStart(-60'001), -120'000);
}

TEST(StateWindowSpecTest, WindowClosesAfterEndPlusGrace) {
  const WindowSpec spec{.size_ms = 60'000, .grace_ms = 5'000};
  EXPECT_FALSE(spec.IsClosed(0, 59'999));
  EXPECT_FALSE(spec.IsClosed(0, 64'999));  // past the end, within grace
  EXPECT_TRUE(spec.IsClosed(0, 65'000));
  EXPECT_TRUE(WindowSpec{.size_ms = 10}.IsClosed(0, 10));  // no grace: closes at its end
}

class StateWindowStoreTest : public ::testing::Test {
 protected:
  static constexpr WindowSpec kSpec{.size_ms = 10, .grace_ms = 2, .retention_ms = 100};

  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cm_state_window_" + std::to_string(::getpid()) + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    Reopen();
  }
  void TearDown() override {
    state_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Reopen() {
    state_.reset();
    TaskStateOptions options;
    options.directory = dir_.string();
    options.stores = {Spec("windows", StoreType::kWindow, kSpec)};
    auto opened = TaskState::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    state_ = std::move(opened).value();
    store_ = state_->window_store("windows");
    ASSERT_NE(store_, nullptr);
  }

  void Commit() {
    const Status s = state_->Commit({});
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  Windows Fetch(std::string_view key, int64_t from, int64_t to) {
    Windows out;
    store_->Fetch(key, from, to, [&](std::string_view k, int64_t start, std::string_view v) {
      out.emplace_back(k, start, v);
      return true;
    });
    return out;
  }

  Windows FetchAll(int64_t from, int64_t to) {
    Windows out;
    store_->FetchAll(from, to, [&](std::string_view k, int64_t start, std::string_view v) {
      out.emplace_back(k, start, v);
      return true;
    });
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<TaskState> state_;
  WindowStore* store_ = nullptr;
};

TEST_F(StateWindowStoreTest, SpecComesFromStoreSpec) {
  EXPECT_EQ(store_->name(), "windows");
  EXPECT_EQ(store_->spec().size_ms, 10);
  EXPECT_EQ(store_->spec().grace_ms, 2);
  EXPECT_EQ(store_->spec().retention_ms, 100);
  EXPECT_EQ(state_->key_value_store("windows"), nullptr);
}

TEST_F(StateWindowStoreTest, PutGetDeleteByKeyAndStart) {
  store_->Put("org", 10, "a");
  store_->Put("org", 20, "b");
  EXPECT_EQ(store_->Get("org", 10), "a");
  EXPECT_EQ(store_->Get("org", 20), "b");
  EXPECT_EQ(store_->Get("org", 0), std::nullopt);
  EXPECT_EQ(store_->Get("other", 10), std::nullopt);
  Commit();
  store_->Delete("org", 10);
  EXPECT_EQ(store_->Get("org", 10), std::nullopt);
  Commit();
  Reopen();
  EXPECT_EQ(store_->Get("org", 10), std::nullopt);
  EXPECT_EQ(store_->Get("org", 20), "b");
}

TEST_F(StateWindowStoreTest, FetchReturnsWindowsInStartOrderIncludingNegativeStarts) {
  for (int64_t start : {int64_t{30}, int64_t{-10}, int64_t{0}, kMax, int64_t{10}, kMin,
                        int64_t{-20}, int64_t{20}}) {
    store_->Put("k", start, std::to_string(start));
  }
  Commit();
  store_->Put("k", -30, "-30");  // buffered, merged into the scan

  EXPECT_EQ(Fetch("k", kMin, kMax), (Windows{{"k", kMin, std::to_string(kMin)},
                                             {"k", -30, "-30"},
                                             {"k", -20, "-20"},
                                             {"k", -10, "-10"},
                                             {"k", 0, "0"},
                                             {"k", 10, "10"},
                                             {"k", 20, "20"},
                                             {"k", 30, "30"}}));
  // from is inclusive, to exclusive.
  EXPECT_EQ(Fetch("k", -10, 20), (Windows{{"k", -10, "-10"}, {"k", 0, "0"}, {"k", 10, "10"}}));
  EXPECT_EQ(Fetch("k", 20, 20), Windows{});
  EXPECT_EQ(Fetch("k", 30, 10), Windows{});
}

TEST_F(StateWindowStoreTest, FetchKeepsKeysThatArePrefixesOfOtherKeysApart) {
  store_->Put("a", 5, "a5");
  store_->Put("ab", 1, "ab1");
  store_->Put(std::string("a\0", 2), 3, "a0-3");
  store_->Put("a", -5, "a-5");
  Commit();
  store_->Put("ab", 7, "ab7");

  EXPECT_EQ(Fetch("a", kMin, kMax), (Windows{{"a", -5, "a-5"}, {"a", 5, "a5"}}));
  EXPECT_EQ(Fetch("ab", kMin, kMax), (Windows{{"ab", 1, "ab1"}, {"ab", 7, "ab7"}}));
  EXPECT_EQ(Fetch(std::string("a\0", 2), kMin, kMax),
            (Windows{{std::string("a\0", 2), 3, "a0-3"}}));
}

TEST_F(StateWindowStoreTest, FetchMergesBufferedDeletesAndOverwrites) {
  store_->Put("k", 0, "old0");
  store_->Put("k", 10, "old10");
  store_->Put("k", 20, "old20");
  Commit();
  store_->Delete("k", 10);
  store_->Put("k", 20, "new20");
  EXPECT_EQ(Fetch("k", 0, 100), (Windows{{"k", 0, "old0"}, {"k", 20, "new20"}}));
  state_->Abort();
  EXPECT_EQ(Fetch("k", 0, 100),
            (Windows{{"k", 0, "old0"}, {"k", 10, "old10"}, {"k", 20, "old20"}}));
}

TEST_F(StateWindowStoreTest, FetchAllFiltersByStartInKeyThenStartOrder) {
  store_->Put("b", 10, "b10");
  store_->Put("a", 20, "a20");
  store_->Put("a", 0, "a0");
  store_->Put("b", -10, "b-10");
  Commit();
  store_->Put("a", 10, "a10");
  store_->Put("c", 100, "c100");

  EXPECT_EQ(FetchAll(0, 20), (Windows{{"a", 0, "a0"}, {"a", 10, "a10"}, {"b", 10, "b10"}}));
  EXPECT_EQ(FetchAll(kMin, kMax).size(), 6U);
  EXPECT_EQ(FetchAll(5, 5), Windows{});
}

TEST_F(StateWindowStoreTest, ExpireBeforeDeletesWindowsPastRetentionThroughTheChangelog) {
  // size 10, retention 100: the window starting at s expires at stream time s + 110.
  store_->Put("a", 0, "x");
  store_->Put("a", 10, "x");
  store_->Put("b", -50, "x");
  Commit();
  store_->Put("b", -5, "x");  // buffered

  EXPECT_EQ(store_->ExpireBefore(104), 1U);  // b@-50 (expired since 60); b@-5 expires at 105
  EXPECT_EQ(store_->ExpireBefore(105), 1U);  // b@-5
  EXPECT_EQ(store_->ExpireBefore(109), 0U);  // a@0 expires at 110
  EXPECT_EQ(store_->Get("b", -5), std::nullopt);
  EXPECT_EQ(FetchAll(kMin, kMax), (Windows{{"a", 0, "x"}, {"a", 10, "x"}}));

  // The expiry deletes are changelogged like any write.
  std::vector<std::string> tombstones;
  state_->VisitPendingChanges([&](const std::string& store, const PendingChange& change) {
    EXPECT_EQ(store, "windows");
    if (!change.value) tombstones.push_back(change.key);
  });
  EXPECT_EQ(tombstones.size(), 2U);

  Commit();
  Reopen();
  EXPECT_EQ(FetchAll(kMin, kMax), (Windows{{"a", 0, "x"}, {"a", 10, "x"}}));
  EXPECT_EQ(store_->ExpireBefore(kMax), 2U);
  EXPECT_EQ(FetchAll(kMin, kMax), Windows{});
}

TEST_F(StateWindowStoreTest, ExpireBeforeDoesNotOverflowNearTheLimits) {
  store_->Put("k", kMax - 5, "late");
  store_->Put("k", kMin, "early");
  EXPECT_EQ(store_->ExpireBefore(kMin + 109), 0U);
  EXPECT_EQ(store_->ExpireBefore(kMin + 110), 1U);
  EXPECT_EQ(store_->ExpireBefore(kMax - 1), 0U);  // end + retention saturates past kMax
  EXPECT_EQ(store_->Get("k", kMax - 5), "late");
}

}  // namespace
}  // namespace cm::state
