#include "topology/runtime/state_writer.h"

#include <algorithm>
#include <cassert>
#include <exception>
#include <string>
#include <utility>

#include "topology/common/thread_name.h"

namespace cm::topology {

using state::Status;

StateWriter::StateWriter(const std::string& thread_name, int threads, size_t max_queued_changes)
    : max_queued_changes_(max_queued_changes) {
  for (int i = 0; i < threads; ++i)
    threads_.emplace_back([this, thread_name] { Run(thread_name); });
}

StateWriter::~StateWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Every lane waits for its writes before it goes (StateRestorer's destructor, CommitAll).
    assert(queue_.empty() && "a state write outlived its lane");
    stopping_ = true;
  }
  work_.notify_all();
  for (std::thread& thread : threads_) thread.join();
}

void StateWriter::Submit(Lane& lane, size_t changes, state::TaskState::StateWrite write) {
  std::unique_lock<std::mutex> lock(mu_);
  // An empty queue takes any write, however large, and a write of no changes (a commit's, whose
  // changes are in memory already) never waits.
  done_.wait(lock, [&] {
    return changes == 0 || queued_changes_ == 0 || queued_changes_ + changes <= max_queued_changes_;
  });
  queue_.push_back({&lane, changes, std::move(write)});  // first: it may throw (bad_alloc)
  ++lane.pending;
  queued_changes_ += changes;
  lock.unlock();
  work_.notify_one();
}

Status StateWriter::Failure(const Lane& lane) const {
  std::lock_guard<std::mutex> lock(mu_);
  return lane.failure;
}

Status StateWriter::Wait(Lane& lane) {
  std::unique_lock<std::mutex> lock(mu_);
  done_.wait(lock, [&] { return lane.pending == 0; });
  return lane.failure;
}

std::deque<StateWriter::Job>::iterator StateWriter::NextRunnable() {
  return std::find_if(queue_.begin(), queue_.end(),
                      [](const Job& job) { return !job.lane->running; });
}

void StateWriter::Run(const std::string& thread_name) {
  NameCurrentThread(thread_name);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    auto next = queue_.end();
    work_.wait(lock, [&] {
      next = NextRunnable();
      return next != queue_.end() || (stopping_ && queue_.empty());
    });
    if (next == queue_.end()) return;  // stopping
    Job job = std::move(*next);
    queue_.erase(next);
    Lane& lane = *job.lane;
    lane.running = true;
    const bool skip = !lane.failure.ok();
    lock.unlock();
    Status s;
    if (!skip) {
      // As on the stream thread, where the write ran before: an exception (bad_alloc) fails the
      // restore or the commit, and with it the thread, instead of ending the process here.
      try {
        s = job.write();
      } catch (const std::exception& e) {
        s = Status::IOError(std::string("state write: ") + e.what());
      }
    }
    job.write = nullptr;  // the changes go before the lock is taken again
    lock.lock();
    if (!s.ok() && lane.failure.ok()) lane.failure = std::move(s);
    lane.running = false;
    --lane.pending;
    queued_changes_ -= job.changes;
    done_.notify_all();
    work_.notify_one();  // the lane's next write, if queued, may run now
  }
}

}  // namespace cm::topology
