#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/status.h"
#include "topology/kafka/kafka_handle.h"

namespace cm::topology {

// A plain Kafka producer for code outside the engine that must not see librdkafka (bridges,
// the HTTP edge): records in, one delivery report per record out.
struct RecordProducerOptions {
  std::string bootstrap_servers;
  std::string client_id = "cmstream";
  // Idempotent by default: librdkafka's retries then never duplicate or reorder a record.
  bool idempotent = true;
  std::chrono::milliseconds linger{5};
  // How long librdkafka keeps retrying a record before reporting it failed (Kafka's
  // delivery.timeout.ms).
  std::chrono::milliseconds delivery_timeout{std::chrono::minutes(2)};
  std::map<std::string, std::string> overrides;  // any librdkafka property, for experiments
};

struct DeliveryReport {
  state::Status status;  // OK once Kafka acknowledged the record
  // The failure cannot be cured by retrying with this producer (fenced, unauthorised,
  // misconfigured): recreate it or stop.
  bool fatal = false;
  int32_t partition = -1;
  int64_t offset = -1;
};

// Key and value are copied by Produce, so they only have to live until it returns.
struct OutgoingRecord {
  std::string topic;
  std::string_view key;  // empty: no key (librdkafka then spreads records over partitions)
  std::string_view value;
  std::vector<std::pair<std::string, std::string>> headers;
  int32_t partition = -1;  // -1: Kafka's default partitioner (murmur2 of the key) picks
};

class RecordProducer {
 public:
  using OnDelivery = std::function<void(const DeliveryReport&)>;

  static state::Result<std::unique_ptr<RecordProducer>> Create(
      const RecordProducerOptions& options);
  // Waits up to 5 s for records in flight; their callbacks may run in here.
  ~RecordProducer();
  RecordProducer(const RecordProducer&) = delete;
  RecordProducer& operator=(const RecordProducer&) = delete;

  // Queues the record; `on_delivery` runs exactly once, from Poll or Flush in whichever thread
  // calls them. Waits (serving delivery reports) while librdkafka's queue is full. An error
  // here means the record was not queued and `on_delivery` will not run.
  state::Status Produce(const OutgoingRecord& record, OnDelivery on_delivery);
  // Serves delivery reports for up to `timeout` (0: only those already due).
  void Poll(std::chrono::milliseconds timeout);
  // Waits until every queued record has its delivery report, or `timeout` passed.
  state::Status Flush(std::chrono::milliseconds timeout);
  // Drops records not yet sent; their callbacks then run with a failure, from Poll or Flush.
  void Purge();
  // Records queued or in flight.
  int InFlight() const;

 private:
  RecordProducer() = default;
  KafkaHandle producer_;
};

}  // namespace cm::topology
