// CommitSignal: how a thread awaiting a command's result learns that a stream thread committed.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "topology/runtime/commit_signal.h"

namespace cm::topology {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

TEST(CommitSignal, AWaiterWakesOnTheNextCommit) {
  CommitSignal signal;
  const uint64_t epoch = signal.Epoch();
  std::thread committer([&] { signal.Notify(); });
  EXPECT_TRUE(signal.WaitAfter(epoch, Clock::now() + 30s));
  committer.join();
  EXPECT_EQ(signal.Epoch(), epoch + 1);
}

// The epoch is read before the state is looked at: a commit between the two is not missed.
TEST(CommitSignal, ACommitBeforeTheWaitIsNotMissed) {
  CommitSignal signal;
  const uint64_t epoch = signal.Epoch();
  signal.Notify();
  const auto before = Clock::now();
  EXPECT_TRUE(signal.WaitAfter(epoch, before + 30s));
  EXPECT_LT(Clock::now() - before, 30s);
}

TEST(CommitSignal, WithoutACommitTheWaitEndsAtItsDeadline) {
  CommitSignal signal;
  const uint64_t epoch = signal.Epoch();
  const auto deadline = Clock::now() + 20ms;
  EXPECT_FALSE(signal.WaitAfter(epoch, deadline));
  EXPECT_GE(Clock::now(), deadline);
  EXPECT_EQ(signal.Epoch(), epoch);
}

}  // namespace
}  // namespace cm::topology
