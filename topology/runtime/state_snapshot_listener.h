#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "state/task_state.h"
#include "topology/processor/read_only_stores.h"
#include "topology/runtime/stream_task.h"

namespace cm::topology {

// Something outside the engine that mirrors the tasks' committed state (bridges/postgres). The
// stream thread calls it at three points of a task's life; it must only take the data and
// return, since it runs on the processing thread (never wait on I/O here).
class StateSnapshotListener {
 public:
  // Next changelog offset per logged store: the state a task's stores reflect.
  using ChangelogOffsets = std::map<std::string, int64_t>;
  struct Change {
    std::string store;
    state::StoreChange change;  // value nullopt: the key was deleted
  };
  // Runs a function over the task's committed stores, from any thread, and returns true; false
  // once the task no longer runs here. Callable until OnTaskClosed for that task has returned.
  using StoresReader = std::function<bool(const std::function<void(const ReadOnlyStores&)>&)>;

  virtual ~StateSnapshotListener() = default;

  // Stores whose changes OnTaskCommitted should carry (changes of others are not copied).
  virtual bool WantsStore(const std::string& store) const = 0;
  // The task has restored its stores and starts processing; its stores reflect `offsets`.
  virtual void OnTaskRunning(const TaskId& task, const ChangelogOffsets& offsets,
                             StoresReader reader) = 0;
  // A commit of the task has been sealed and written to its local state: `changes` (of the
  // wanted stores, in store and key order) took the stores to `offsets`.
  virtual void OnTaskCommitted(const TaskId& task, std::vector<Change> changes,
                               const ChangelogOffsets& offsets) = 0;
  // The task stops running here (revoked, or the thread stops). May block while a call of the
  // task's StoresReader is running; after it returns the reader must not be called.
  virtual void OnTaskClosed(const TaskId& task) = 0;
};

}  // namespace cm::topology
