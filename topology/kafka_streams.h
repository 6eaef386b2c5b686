#pragma once

#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "state/status.h"
#include "state/task_state.h"
#include "topology/stream_thread.h"
#include "topology/streams_config.h"
#include "topology/topic_admin.h"
#include "topology/topology.h"

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
  // True once every thread is alive and every assigned task is running (not restoring).
  bool Ready() const;
  // The first thread failure, or empty.
  std::string Failure() const;
  // /ready's body: threads, tasks, restore progress.
  nlohmann::json ReadyReport() const;
  // Prometheus text for the stream threads and stores.
  std::string RenderMetrics() const;

  const StreamsConfig& config() const { return config_; }
  const Topology& topology() const { return topology_; }

 private:
  state::Status EnsureTopics();

  const Topology& topology_;
  StreamsConfig config_;
  TopicAdmin& admin_;
  std::unique_ptr<state::StateResources> resources_;
  std::vector<std::unique_ptr<StreamThread>> threads_;
};

}  // namespace cm::topology
