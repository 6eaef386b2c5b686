#pragma once

// The one owning handle of a librdkafka client. Apart from kafka_client.h so that headers which
// hide librdkafka from their users (RecordProducer, EmbeddedBroker) can hold one.
#include <memory>

typedef struct rd_kafka_s rd_kafka_t;

namespace cm::topology {

struct KafkaHandleDeleter {
  void operator()(rd_kafka_t* rk) const;  // rd_kafka_destroy
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaHandleDeleter>;

}  // namespace cm::topology
