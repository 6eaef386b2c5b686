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

using Fired = std::vector<std::tuple<std::string, int64_t, std::string>>;  // id, due, payload

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

Fired AsTuples(const std::vector<Timer>& timers) {
  Fired out;
  for (const Timer& t : timers) out.emplace_back(t.id, t.due_ms, t.payload);
  return out;
}

class StateTimerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cm_state_timer_" + std::to_string(::getpid()) + "_" +
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
    options.stores = {Spec("timers", StoreType::kTimer)};
    auto opened = TaskState::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    state_ = std::move(opened).value();
    timers_ = state_->timer_store("timers");
    ASSERT_NE(timers_, nullptr);
  }

  void Commit() {
    const Status s = state_->Commit({});
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  Fired Pop(int64_t now, size_t max = 100) { return AsTuples(timers_->PopDue(now, max)); }

  std::filesystem::path dir_;
  std::unique_ptr<TaskState> state_;
  TimerStore* timers_ = nullptr;
};

TEST_F(StateTimerStoreTest, FiresDueTimersInDueThenIdOrder) {
  EXPECT_EQ(timers_->name(), "timers");
  EXPECT_EQ(timers_->NextDue(), std::nullopt);
  timers_->Schedule("late", 300, "p-late");
  timers_->Schedule("b", 100, "p-b");
  timers_->Schedule("neg", -5, "p-neg");
  timers_->Schedule("a", 100, "p-a");
  timers_->Schedule("mid", 200, "p-mid");
  EXPECT_EQ(timers_->NextDue(), -5);

  EXPECT_EQ(Pop(-6), Fired{});
  EXPECT_EQ(Pop(100), (Fired{{"neg", -5, "p-neg"}, {"a", 100, "p-a"}, {"b", 100, "p-b"}}));
  EXPECT_EQ(Pop(100), Fired{});  // popped timers are gone
  EXPECT_EQ(timers_->Get("a"), std::nullopt);
  EXPECT_EQ(timers_->NextDue(), 200);
  EXPECT_EQ(Pop(kMax), (Fired{{"mid", 200, "p-mid"}, {"late", 300, "p-late"}}));
  EXPECT_EQ(timers_->NextDue(), std::nullopt);
}

TEST_F(StateTimerStoreTest, PopDueHonoursMaxCount) {
  for (int i = 0; i < 5; ++i) timers_->Schedule("t" + std::to_string(i), i, "");
  EXPECT_EQ(Pop(10, 0), Fired{});
  EXPECT_EQ(Pop(10, 2), (Fired{{"t0", 0, ""}, {"t1", 1, ""}}));
  EXPECT_EQ(Pop(10, 2), (Fired{{"t2", 2, ""}, {"t3", 3, ""}}));
  EXPECT_EQ(Pop(10, 2), (Fired{{"t4", 4, ""}}));
}

TEST_F(StateTimerStoreTest, ScheduleReplacesAnEarlierScheduleOfTheSameId) {
  timers_->Schedule("x", 100, "first");
  Commit();
  timers_->Schedule("x", 50, "second");  // the committed entry at 100 must disappear
  const std::optional<Timer> got = timers_->Get("x");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->due_ms, 50);
  EXPECT_EQ(got->payload, "second");
  EXPECT_EQ(timers_->NextDue(), 50);

  EXPECT_EQ(Pop(75), (Fired{{"x", 50, "second"}}));
  EXPECT_EQ(Pop(kMax), Fired{});

  timers_->Schedule("y", 10, "a");
  timers_->Schedule("y", 20, "b");
  timers_->Schedule("y", 20, "c");  // same due: payload replaced
  EXPECT_EQ(Pop(kMax), (Fired{{"y", 20, "c"}}));
}

TEST_F(StateTimerStoreTest, CancelRemovesTimer) {
  timers_->Schedule("a", 10, "");
  timers_->Schedule("b", 20, "");
  Commit();
  EXPECT_TRUE(timers_->Cancel("a"));
  EXPECT_FALSE(timers_->Cancel("a"));
  EXPECT_FALSE(timers_->Cancel("never"));
  EXPECT_EQ(timers_->Get("a"), std::nullopt);
  EXPECT_EQ(timers_->NextDue(), 20);
  EXPECT_EQ(Pop(kMax), (Fired{{"b", 20, ""}}));
}

TEST_F(StateTimerStoreTest, GetReturnsScheduledTimer) {
  timers_->Schedule(std::string("id\0x", 4), -7, std::string("pay\0load", 8));
  const std::optional<Timer> got = timers_->Get(std::string("id\0x", 4));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id, std::string("id\0x", 4));
  EXPECT_EQ(got->due_ms, -7);
  EXPECT_EQ(got->payload, std::string("pay\0load", 8));
}

TEST_F(StateTimerStoreTest, TimersSurviveReopenAndFireInOrder) {
  timers_->Schedule("c", 30, "pc");
  timers_->Schedule("a", 10, "pa");
  Commit();
  timers_->Schedule("b", 20, "pb");
  Commit();
  timers_->Schedule("lost", 5, "never committed");

  Reopen();
  EXPECT_EQ(timers_->NextDue(), 10);
  EXPECT_EQ(timers_->Get("lost"), std::nullopt);
  EXPECT_EQ(Pop(25), (Fired{{"a", 10, "pa"}, {"b", 20, "pb"}}));
  Commit();

  Reopen();
  EXPECT_EQ(Pop(kMax), (Fired{{"c", 30, "pc"}}));
}

TEST_F(StateTimerStoreTest, AbortRestoresPoppedTimers) {
  timers_->Schedule("a", 10, "");
  Commit();
  EXPECT_EQ(Pop(kMax).size(), 1U);
  state_->Abort();
  EXPECT_EQ(timers_->NextDue(), 10);
}

// PopDue starts its scans past what it popped before; whatever brings entries back below that
// point (a schedule in the past, an undone record, an aborted commit) must still be found.
TEST_F(StateTimerStoreTest, TimersBelowWhatWasPoppedAreStillFound) {
  for (int i = 0; i < 100; ++i) timers_->Schedule("t" + std::to_string(100 + i), 1000 + i, "");
  Commit();
  EXPECT_EQ(Pop(1049).size(), 50U);
  timers_->Schedule("early", 5, "");
  EXPECT_EQ(Pop(1049), (Fired{{"early", 5, ""}}));
  EXPECT_EQ(timers_->NextDue(), 1050);

  // A record whose processing failed: its pops are undone.
  state_->SetSavepoint();
  EXPECT_EQ(Pop(1059).size(), 10U);
  state_->RollbackToSavepoint();
  EXPECT_EQ(Pop(1051), (Fired{{"t150", 1050, ""}, {"t151", 1051, ""}}));

  // A commit that is aborted: everything popped since the last commit comes back.
  Commit();
  EXPECT_EQ(Pop(kMax).size(), 48U);
  state_->Abort();
  EXPECT_EQ(Pop(1052), (Fired{{"t152", 1052, ""}}));
  EXPECT_EQ(Pop(kMax).size(), 47U);
  EXPECT_EQ(timers_->NextDue(), std::nullopt);
  timers_->Schedule("late", 7, "");
  EXPECT_EQ(timers_->NextDue(), 7);
  EXPECT_EQ(Pop(6), Fired{});  // before anything is due: answered without a scan
  EXPECT_EQ(Pop(7), (Fired{{"late", 7, ""}}));
}

}  // namespace
}  // namespace cm::state
