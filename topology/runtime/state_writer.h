#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "state/status.h"
#include "state/task_state.h"

namespace cm::topology {

// Runs a stream thread's writes to its tasks' states on threads of its own: the restore writes
// (TaskState::PrepareRestore), so the stream thread reads and decides the next changelog records
// while RocksDB inserts the last ones (the memtable insert was about half of a restore's
// stream-thread CPU), and the writes of a commit (TaskState::PrepareCommit), each task's database
// beside the others'. Each writer of a task (a restorer, a commit) has a Lane: its writes run one
// at a time in the order submitted, those of different lanes side by side. A lane also keeps how
// many of its writes are queued or running and the first that failed (its later writes are then
// skipped).
class StateWriter {
 public:
  class Lane {
   public:
    Lane() = default;
    Lane(const Lane&) = delete;
    Lane& operator=(const Lane&) = delete;

   private:
    friend class StateWriter;
    // Guarded by the writer's mutex.
    size_t pending = 0;
    bool running = false;  // a thread runs one of its writes
    state::Status failure;
  };

  // `threads` threads named `thread_name`. `max_queued_changes`: Submit waits while the queued
  // writes hold this many changes, so a reader faster than RocksDB does not pile the changelogs
  // up in memory (a commit's writes hold none: their changes are already in memory).
  StateWriter(const std::string& thread_name, int threads, size_t max_queued_changes);
  ~StateWriter();
  StateWriter(const StateWriter&) = delete;
  StateWriter& operator=(const StateWriter&) = delete;

  // Queues `write` (of `changes` changes) for `lane`. The lane must outlive it: Wait first.
  void Submit(Lane& lane, size_t changes, state::TaskState::StateWrite write);
  // The lane's first failure so far, without waiting.
  state::Status Failure(const Lane& lane) const;
  // Waits until every write of the lane has run; the first failure among them.
  state::Status Wait(Lane& lane);

 private:
  struct Job {
    Lane* lane = nullptr;
    size_t changes = 0;
    state::TaskState::StateWrite write;
  };
  void Run(const std::string& thread_name);
  // The first queued job whose lane no thread is writing, or end().
  std::deque<Job>::iterator NextRunnable();

  const size_t max_queued_changes_;
  mutable std::mutex mu_;
  std::condition_variable work_;  // a job queued or a lane freed, or stopping
  std::condition_variable done_;  // a job ran: room in the queue, a lane may be drained
  std::deque<Job> queue_;
  size_t queued_changes_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;  // last: started once the members above exist
};

}  // namespace cm::topology
