#pragma once

// A consumer's fetched messages taken a batch at a time. rd_kafka_consumer_poll reads the
// clock at least once per message and locks the queue for each; a restore's stream thread
// spent 12% of its time in clock_gettime alone. A batch costs one clock read and one call.
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

namespace cm::topology {

class ConsumerBatch {
 public:
  static constexpr size_t kDefaultCapacity = 1024;

  // For a consumer whose main queue is forwarded to its consumer queue
  // (rd_kafka_poll_set_consumer). Rebalance callbacks are served while a batch is taken, so a
  // group consumer's batch can hold records of partitions revoked meanwhile: its user must drop
  // records whose partition it no longer owns.
  explicit ConsumerBatch(rd_kafka_t* consumer, size_t capacity = kDefaultCapacity);
  ~ConsumerBatch();
  ConsumerBatch(const ConsumerBatch&) = delete;
  ConsumerBatch& operator=(const ConsumerBatch&) = delete;

  // Replaces the batch: waits up to `timeout` for a first message, then takes every message
  // already queued, up to the capacity. Empty when none came in time. librdkafka's batch call
  // would wait out the whole timeout for a full batch, so only the first message waits.
  void Poll(std::chrono::milliseconds timeout);
  size_t size() const { return messages_.size(); }
  rd_kafka_message_t& operator[](size_t i) { return *messages_[i]; }
  // Destroys the messages (also done by the next Poll and the destructor).
  void Clear();

 private:
  struct QueueDeleter {
    void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
  };

  rd_kafka_t* consumer_;
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue_;
  size_t capacity_;
  std::vector<rd_kafka_message_t*> messages_;  // owned: destroyed by Clear
};

}  // namespace cm::topology
