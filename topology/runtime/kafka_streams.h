#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "state/status.h"
#include "state/task_state.h"
#include "topology/kafka/topic_admin.h"
#include "topology/processor/topology.h"
#include "topology/runtime/commit_signal.h"
#include "topology/runtime/global_stream_thread.h"
#include "topology/runtime/stream_thread.h"
#include "topology/runtime/streams_config.h"

namespace cm::topology {

// Runs a topology as one member of the application's consumer group (Kafka Streams'
// KafkaStreams): creates the topics it needs, then runs its stream threads.
class KafkaStreams {
 public:
  KafkaStreams(const Topology& topology, StreamsConfig config, TopicAdmin& admin);
  ~KafkaStreams();

  // Creates missing topics (internal ones with the partition count of their sources) and
  // starts the threads. Fails when co-partitioned sources disagree on partition counts.
  state::Status Start();
  void Stop();

  std::vector<ThreadStatus> Threads() const;
  // True once the global stores are restored, every thread is alive and every assigned task
  // is running (not restoring).
  bool Ready() const;
  // The first thread failure, or empty.
  std::string Failure() const;
  // /ready's body: threads, tasks, restore progress.
  nlohmann::json ReadyReport() const;
  // Prometheus text for the stream threads and stores.
  std::string RenderMetrics() const;

  // The task of `subtopology` that owns `key`, by Kafka's partitioner over the sub-topology's
  // partition count. Valid after Start.
  TaskId TaskForKey(int subtopology, std::string_view key) const;
  // How many tasks (partitions) `subtopology` has: for requests that go to every task.
  // Valid after Start.
  int32_t PartitionCount(int subtopology) const {
    return partitions_.at(static_cast<size_t>(subtopology));
  }
  // Runs `query` over the task's committed stores when a thread of this instance runs it.
  // NotFound when it runs elsewhere or nowhere (restoring counts as nowhere).
  state::Status Query(const TaskId& task,
                      const std::function<void(const ReadOnlyStores&)>& query) const;
  // Commits of this instance's stream threads, counted: read CommitEpoch, look at committed
  // state, then AwaitCommit(epoch, deadline) returns once a thread has committed since (true)
  // or at the deadline (false).
  uint64_t CommitEpoch() const { return commits_.Epoch(); }
  bool AwaitCommit(uint64_t epoch, std::chrono::steady_clock::time_point deadline) const {
    return commits_.WaitAfter(epoch, deadline);
  }
  // A global store of the topology (TopologyBuilder::AddGlobalStore), readable from any thread;
  // null before Start or when there is none of that name.
  state::ReadOnlyKeyValueStore* GlobalStore(std::string_view name) const {
    return global_thread_ ? global_thread_->Store(name) : nullptr;
  }
  // True once every global store has read its topic to the end it had at Start.
  bool GlobalStoresRestored() const { return !global_thread_ || global_thread_->Restored(); }
  // Tasks running here, as "0_3".
  std::vector<std::string> RunningTasks() const;
  static std::string InstancesTopic(const std::string& app_id) { return app_id + "-instances"; }

  const StreamsConfig& config() const { return config_; }
  const Topology& topology() const { return topology_; }

 private:
  state::Status EnsureTopics();

  const Topology& topology_;
  StreamsConfig config_;
  TopicAdmin& admin_;
  std::unique_ptr<state::StateResources> resources_;
  std::unique_ptr<GlobalStreamThread> global_thread_;  // null without global stores
  CommitSignal commits_;                               // before the threads, which notify it
  std::vector<std::unique_ptr<StreamThread>> threads_;
  std::map<std::string, int32_t> global_partitions_;
  std::vector<int32_t> partitions_;  // per sub-topology
};

}  // namespace cm::topology
