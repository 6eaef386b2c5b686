// StateWriter: the threads that write a stream thread's restored changelog records and its
// commits while the stream thread goes on.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "topology/runtime/state_writer.h"

namespace cm::topology {
namespace {

using state::Status;
using namespace std::chrono_literals;

TEST(StateWriter, OneTasksWritesRunInOrderAndAnothersDoNotWaitForThem) {
  StateWriter writer("test-writer", 2, 1'000);
  StateWriter::Lane a, b;
  std::promise<void> release_a1;
  std::shared_future<void> a1_released = release_a1.get_future().share();
  std::mutex mu;
  std::vector<std::string> order;
  auto record = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(what);
  };
  writer.Submit(a, 1, [&] {
    a1_released.wait();
    record("a1");
    return Status::OK();
  });
  writer.Submit(a, 1, [&] {
    record("a2");
    return Status::OK();
  });
  writer.Submit(b, 1, [&] {
    record("b1");
    return Status::OK();
  });
  // b's write runs while a's first one is held: the second thread does not wait behind a.
  auto b_done = std::async(std::launch::async, [&] { return writer.Wait(b); });
  const bool b_finished = b_done.wait_for(30s) == std::future_status::ready;
  release_a1.set_value();
  ASSERT_TRUE(b_finished) << "b's write waited for a's";
  EXPECT_TRUE(b_done.get().ok());
  EXPECT_TRUE(writer.Wait(a).ok());
  // a2 was free for the idle thread while a1 ran, yet it ran after a1.
  EXPECT_EQ(order, (std::vector<std::string>{"b1", "a1", "a2"}));
}

TEST(StateWriter, AFailedWriteIsReportedAndItsTasksLaterWritesAreSkipped) {
  StateWriter writer("test-writer", 2, 1'000);
  StateWriter::Lane a, b;
  std::atomic<bool> a2_ran{false}, b1_ran{false};
  writer.Submit(a, 1, [] { return Status::IOError("disk full"); });
  writer.Submit(a, 1, [&] {
    a2_ran = true;
    return Status::OK();
  });
  writer.Submit(b, 1, [&] {
    b1_ran = true;
    return Status::OK();
  });
  const Status failed = writer.Wait(a);
  EXPECT_EQ(failed.code(), Status::Code::kIOError);
  EXPECT_EQ(failed.message(), "disk full");
  EXPECT_EQ(writer.Failure(a).code(), Status::Code::kIOError);
  EXPECT_FALSE(a2_ran) << "a write ran after an earlier one of its task failed";
  EXPECT_TRUE(writer.Wait(b).ok());
  EXPECT_TRUE(b1_ran);
  EXPECT_TRUE(writer.Failure(b).ok());
}

TEST(StateWriter, AWriteThatThrowsFailsItsTaskAndTheWriterGoesOn) {
  StateWriter writer("test-writer", 1, 1'000);
  StateWriter::Lane a, b;
  writer.Submit(a, 1, []() -> Status { throw std::bad_alloc(); });
  const Status failed = writer.Wait(a);
  EXPECT_EQ(failed.code(), Status::Code::kIOError);
  EXPECT_NE(failed.message().find("state write"), std::string::npos) << failed.message();
  std::atomic<bool> b1_ran{false};
  writer.Submit(b, 1, [&] {
    b1_ran = true;
    return Status::OK();
  });
  EXPECT_TRUE(writer.Wait(b).ok());
  EXPECT_TRUE(b1_ran);
}

TEST(StateWriter, SubmitWaitsWhileTheQueuedWritesHoldItsBound) {
  StateWriter writer("test-writer", 1, 10);
  StateWriter::Lane a, b;
  // With nothing queued, a write larger than the bound is taken at once.
  writer.Submit(a, 50, [] { return Status::OK(); });
  ASSERT_TRUE(writer.Wait(a).ok());

  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> first_done{false};
  // More changes than the bound: taken, as the queue is empty, and then over it.
  writer.Submit(a, 50, [&] {
    released.wait();
    first_done = true;
    return Status::OK();
  });
  auto submitted = std::async(std::launch::async, [&] {
    writer.Submit(b, 1, [] { return Status::OK(); });
    return first_done.load();
  });
  // Until the first write has run, its 50 changes fill the queue.
  EXPECT_EQ(submitted.wait_for(200ms), std::future_status::timeout)
      << "Submit did not wait for room";
  // A write of no changes (a commit's) is queued at once all the same.
  StateWriter::Lane c;
  auto commit_submitted =
      std::async(std::launch::async, [&] { writer.Submit(c, 0, [] { return Status::OK(); }); });
  EXPECT_EQ(commit_submitted.wait_for(30s), std::future_status::ready)
      << "a write of no changes waited for room";
  release.set_value();
  ASSERT_EQ(submitted.wait_for(30s), std::future_status::ready);
  EXPECT_TRUE(submitted.get()) << "the second write was queued before the first had run";
  EXPECT_TRUE(writer.Wait(a).ok());
  EXPECT_TRUE(writer.Wait(c).ok());
  EXPECT_TRUE(writer.Wait(b).ok());
}

}  // namespace
}  // namespace cm::topology
