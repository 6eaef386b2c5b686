#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "state/status.h"
#include "topology/kafka/record_producer.h"

namespace cm::rabbitmq {

// The routing keys the ingest queue is bound with by default: every CloudMatrix domain event
// the applications use (documents, storage, presence, API, compute, billing and teams).
std::vector<std::string> DefaultRoutingKeys();

struct AmqpBridgeOptions {
  std::string amqp_url = "amqp://guest:guest@127.0.0.1:5672/";
  std::string exchange = "cloudmatrix.events";  // declared as a durable topic exchange
  std::string queue = "cmstream.ingest";        // declared durable; bridges may share it
  std::vector<std::string> routing_keys = DefaultRoutingKeys();
  // Unacknowledged messages RabbitMQ hands this bridge at once (basic.qos). It bounds the
  // messages waiting for Kafka, so it must cover Kafka's round trip at the wanted rate.
  int prefetch = 1000;
  std::string bootstrap_servers;
  std::string topic = "cloudmatrix.events";
  std::string dlq_topic = "cloudmatrix.dlq";
  // After a lost connection (RabbitMQ or a fatal Kafka producer error) the bridge waits
  // `reconnect_backoff_min`, doubling on each failed attempt up to `reconnect_backoff_max`.
  std::chrono::milliseconds reconnect_backoff_min{100};
  std::chrono::milliseconds reconnect_backoff_max{std::chrono::seconds(10)};
  // How long Stop waits for Kafka to acknowledge what was produced, so that it can be acked.
  std::chrono::milliseconds shutdown_timeout{std::chrono::seconds(10)};
  // How long Kafka may take to acknowledge a record before the message is given back to
  // RabbitMQ (nack with requeue) for redelivery.
  std::chrono::milliseconds kafka_delivery_timeout{std::chrono::minutes(2)};
  // Shown as connection_name by `rabbitmqctl list_connections client_properties`.
  std::string connection_name = "cmstream-bridge";
  std::map<std::string, std::string> producer_overrides;
};

struct AmqpBridgeCounters {
  uint64_t consumed = 0;     // messages received from RabbitMQ, redeliveries included
  uint64_t redelivered = 0;  // of which RabbitMQ flagged as redelivered
  uint64_t produced = 0;     // acknowledged by Kafka on the target topic
  uint64_t dlq = 0;          // acknowledged by Kafka on the DLQ topic
  uint64_t acked = 0;        // acknowledged to RabbitMQ
  uint64_t requeued = 0;     // given back to RabbitMQ after a Kafka failure
  uint64_t kafka_failures = 0;
  uint64_t reconnects = 0;  // sessions ended by a lost connection and started again
  bool connected = false;
};

// RabbitMQ -> Kafka (DESIGN.md §1): consumes the ingest queue with manual acks and produces
// each message to Kafka keyed by its organizationId, with an idempotent producer. A message is
// acked only after Kafka acknowledged it (acks are batched with multiple=true up to the highest
// contiguous acknowledged delivery tag, never past one still waiting), so every message reaches
// Kafka at least once; consumers deduplicate by eventId. Messages that cannot be keyed go to
// the DLQ with dlq-reason and dlq-source headers and are acked once the DLQ write is.
class AmqpBridge {
 public:
  explicit AmqpBridge(AmqpBridgeOptions options);
  ~AmqpBridge();  // Stop()
  AmqpBridge(const AmqpBridge&) = delete;
  AmqpBridge& operator=(const AmqpBridge&) = delete;

  // Checks the options and starts the bridge's thread, which connects (and reconnects) on
  // its own: RabbitMQ or Kafka being down is not an error here.
  state::Status Start();
  // Stops consuming, waits up to shutdown_timeout for Kafka's acknowledgements, acks them and
  // closes the connection; RabbitMQ redelivers whatever was not acked.
  void Stop();

  AmqpBridgeCounters Counters() const;
  // Prometheus text format, cmstream_bridge_* families.
  std::string RenderMetrics() const;

 private:
  enum class State { kWaiting, kDone, kFailed };
  struct Pending {
    uint64_t tag;
    State state;
  };
  struct Connection;

  void Run();
  // One AMQP connection, from connecting to losing it or stopping. `connected` tells whether
  // it got as far as consuming.
  state::Status Session(bool& connected);
  state::Status Consume(Connection& c);
  state::Status Handle(uint64_t tag, bool redelivered, std::string_view body,
                       std::string_view exchange, std::string_view routing_key);
  void OnDelivery(uint64_t generation, uint64_t tag, bool dlq,
                  const topology::DeliveryReport& report);
  // Acks (multiple=true) every message Kafka acknowledged up to the first one still waiting;
  // nacks with requeue those Kafka refused.
  state::Status AckResolved(Connection& c);
  void Drain(Connection& c);
  void WaitForStop(std::chrono::milliseconds duration);

  const AmqpBridgeOptions options_;
  std::thread thread_;
  std::mutex mu_;  // guards stop_ for the condition variable
  std::condition_variable stop_cv_;
  std::atomic<bool> stop_{false};

  // Owned by the bridge thread.
  uint64_t generation_ = 0;      // one per session: reports for an earlier channel's tags are stale
  std::deque<Pending> pending_;  // delivery tags of this channel in order, consecutive
  bool producer_fatal_ = false;
  std::unique_ptr<topology::RecordProducer> producer_;

  std::atomic<uint64_t> consumed_{0}, redelivered_{0}, produced_{0}, dlq_{0}, acked_{0},
      requeued_{0}, kafka_failures_{0}, reconnects_{0};
  std::atomic<bool> connected_{false};
};

}  // namespace cm::rabbitmq
