#pragma once

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

  const std::string& bootstrap_servers() const { return bootstrap_servers_; }
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
