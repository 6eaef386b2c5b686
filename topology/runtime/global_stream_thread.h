#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "state/key_value_store.h"
#include "state/status.h"
#include "state/task_state.h"
#include "topology/processor/topology.h"
#include "topology/runtime/streams_config.h"

namespace cm::topology {

// Keeps every global store of a topology (Kafka Streams' GlobalStreamThread): one consumer,
// outside the group, assigned every partition of every global store's topic. It first reads
// them to their end from the checkpointed offsets (the stores live in one RocksDB under
// <state-dir>/<app-id>/global, so a restart reads only what is new), then goes on applying
// new records as they come, each poll's records and offsets in one atomic write. Readers on
// other threads see committed entries only.
class GlobalStreamThread {
 public:
  // `partitions`: the partition count of each global store's topic.
  GlobalStreamThread(const Topology& topology, const StreamsConfig& config,
                     std::map<std::string, int32_t> partitions, state::StateResources& resources);
  ~GlobalStreamThread();
  GlobalStreamThread(const GlobalStreamThread&) = delete;
  GlobalStreamThread& operator=(const GlobalStreamThread&) = delete;

  // Opens the stores and starts reading; restoring goes on in the thread.
  state::Status Start();
  void Stop();

  // True once every global topic was read up to the end it had when the thread started.
  bool Restored() const { return restored_.load(); }
  // Why the thread stopped, or empty.
  std::string Failure() const;
  // A global store, safe to read from any thread; null when there is no such store.
  state::ReadOnlyKeyValueStore* Store(std::string_view name) const;
  // For /ready: each store's topic, records applied and whether it is restored.
  nlohmann::json Report() const;

 private:
  void Run();
  state::Status RestoreAndFollow();
  state::Status Apply(std::map<std::string, std::vector<state::StoreChange>>& changes,
                      const std::map<std::pair<std::string, int32_t>, int64_t>& offsets);
  void Fail(const std::string& error);

  const Topology& topology_;
  const StreamsConfig& config_;
  std::map<std::string, int32_t> partitions_;
  state::StateResources& resources_;
  std::unique_ptr<state::TaskState> state_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> restored_{false};
  std::atomic<uint64_t> applied_{0};
  mutable std::mutex mu_;
  std::string failure_;
  std::thread thread_;
};

}  // namespace cm::topology
