#include "topology/kafka/consumer_batch.h"

#include <cassert>

namespace cm::topology {

ConsumerBatch::ConsumerBatch(rd_kafka_t* consumer, size_t capacity)
    : consumer_(consumer), queue_(rd_kafka_queue_get_consumer(consumer)), capacity_(capacity) {
  assert(queue_ != nullptr && "not a consumer");
  assert(capacity_ > 0);
  messages_.reserve(capacity_);
}

ConsumerBatch::~ConsumerBatch() { Clear(); }

void ConsumerBatch::Clear() {
  for (rd_kafka_message_t* m : messages_) rd_kafka_message_destroy(m);
  messages_.clear();
}

void ConsumerBatch::Poll(std::chrono::milliseconds timeout) {
  Clear();
  messages_.resize(capacity_);
  ssize_t n = rd_kafka_consume_batch_queue(queue_.get(), 0, messages_.data(), capacity_);
  if (n <= 0 && timeout.count() > 0) {
    rd_kafka_message_t* first =
        rd_kafka_consumer_poll(consumer_, static_cast<int>(timeout.count()));
    n = 0;
    if (first != nullptr) {
      messages_[0] = first;
      const ssize_t more =
          rd_kafka_consume_batch_queue(queue_.get(), 0, messages_.data() + 1, capacity_ - 1);
      n = 1 + (more > 0 ? more : 0);
    }
  }
  messages_.resize(n > 0 ? static_cast<size_t>(n) : 0);
}

}  // namespace cm::topology
