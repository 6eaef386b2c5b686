#pragma once

// Plain librdkafka clients for tests: what any other Kafka client would see.
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "topology/kafka/kafka_client.h"

namespace cm::testing {

using Kafka = topology::KafkaHandle;

// Throws when librdkafka refuses a setting or the client: a test cannot go on without it.
inline Kafka NewClient(rd_kafka_type_t type, const std::string& bootstrap,
                       const std::map<std::string, std::string>& settings = {}) {
  auto client = topology::NewKafkaClient(type, bootstrap, settings);
  if (!client.ok()) throw std::invalid_argument(client.status().ToString());
  return std::move(client).value();
}

inline Kafka NewProducer(const std::string& bootstrap) {
  return NewClient(
      RD_KAFKA_PRODUCER, bootstrap,
      {{"partitioner", "murmur2_random"}, {"linger.ms", "5"}, {"enable.idempotence", "true"}});
}

// timestamp_ms 0: the producer's clock.
inline void Produce(rd_kafka_t* producer, const std::string& topic, const std::string& key,
                    const std::string& value, int64_t timestamp_ms = 0) {
  for (;;) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
        RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) throw std::runtime_error(rd_kafka_err2str(err));
    rd_kafka_poll(producer, 50);
  }
}

// Produces one record to `partition` and waits for its acknowledgement, so each call is a
// batch of its own on the broker (the embedded broker returns one batch per partition per fetch).
inline void ProduceAndFlush(rd_kafka_t* producer, const std::string& topic, int32_t partition,
                            const std::string& key, const std::string& value,
                            const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
  for (const auto& [name, v] : headers)
    rd_kafka_header_add(hdrs, name.data(), static_cast<ssize_t>(name.size()), v.data(),
                        static_cast<ssize_t>(v.size()));
  rd_kafka_resp_err_t err =
      rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(hdrs);
    throw std::runtime_error(rd_kafka_err2str(err));
  }
  if (rd_kafka_resp_err_t f = rd_kafka_flush(producer, 10000))
    throw std::runtime_error(rd_kafka_err2str(f));
}

// Reads every partition of a topic from the beginning, incrementally: each Poll returns what
// arrived since the last one.
class TopicReader {
 public:
  TopicReader(const std::string& bootstrap, const std::string& topic, int partitions)
      : consumer_(NewClient(RD_KAFKA_CONSUMER, bootstrap,
                            {{"group.id", "test-reader"},
                             {"enable.auto.commit", "false"},
                             {"isolation.level", "read_committed"}})) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    rd_kafka_assign(consumer_.get(), list);
    rd_kafka_topic_partition_list_destroy(list);
  }

  struct Message {
    int32_t partition = -1;
    int64_t offset = -1;
    std::string key;
    std::string value;
    std::vector<std::pair<std::string, std::string>> headers;
  };

  std::vector<Message> Poll(int max_wait_ms = 200) {
    std::vector<Message> out;
    for (;;) {
      rd_kafka_message_t* m =
          rd_kafka_consumer_poll(consumer_.get(), out.empty() ? max_wait_ms : 0);
      if (m == nullptr) return out;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        Message msg;
        msg.partition = m->partition;
        msg.offset = m->offset;
        if (m->key) msg.key.assign(static_cast<const char*>(m->key), m->key_len);
        if (m->payload) msg.value.assign(static_cast<const char*>(m->payload), m->len);
        for (auto& h : topology::MessageHeaders(*m))
          msg.headers.emplace_back(std::move(h.key), std::move(h.value));
        out.push_back(std::move(msg));
      }
      rd_kafka_message_destroy(m);
    }
  }

 private:
  Kafka consumer_;
};

}  // namespace cm::testing
