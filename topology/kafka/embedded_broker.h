#pragma once

#include <map>
#include <memory>
#include <string>

#include "state/status.h"
#include "topology/kafka/kafka_handle.h"

typedef struct rd_kafka_mock_cluster_s rd_kafka_mock_cluster_t;

namespace cm::topology {

// librdkafka's built-in Kafka-protocol broker (rdkafka_mock.h), in memory, for development and
// tests. Every Kafka client on the machine can use it; topics must be created through it,
// since it does not serve the Admin API (DESIGN.md §3).
class EmbeddedBroker {
 public:
  static state::Result<std::unique_ptr<EmbeddedBroker>> Start(int broker_count = 1);
  ~EmbeddedBroker();
  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  // What a partition holds: librdkafka's mock cluster drops a partition's oldest batches once
  // it holds more bytes than this (`max_size` of rd_kafka_mock_partition; no setting changes
  // it). A consumer further behind than that loses records (StreamThread reports them).
  static constexpr size_t kPartitionBytes = 5 * 1024 * 1024;

  const std::string& bootstrap_servers() const { return bootstrap_servers_; }
  // Consumer settings a stream thread needs on this broker (StreamsConfig::consumer_overrides):
  // it does not answer a waiting fetch when records arrive, so a consumer would wait out
  // fetch.wait.max.ms (500 ms by default) before it sees a command or an outcome. 50 ms, not
  // less: each empty fetch wakes the broker and the client, and on a small machine those
  // wake-ups land in query latency; a command's caller waits for a commit (100 ms) anyway.
  static std::map<std::string, std::string> ConsumerOverrides() {
    return {{"fetch.wait.max.ms", "50"}};
  }
  // Creates a topic; creating an existing topic again is not an error.
  state::Status CreateTopic(const std::string& name, int partitions);
  // Takes every broker of the cluster down (connections closed, new ones refused) or up again,
  // keeping its topics: for tests of clients that must survive Kafka going away.
  state::Status SetAvailable(bool available);

 private:
  EmbeddedBroker() = default;
  KafkaHandle handle_;                          // hosts the cluster: outlives it
  rd_kafka_mock_cluster_t* cluster_ = nullptr;  // owned: destroyed first
  std::string bootstrap_servers_;
};

}  // namespace cm::topology
