#pragma once

// Owning handles for librdkafka clients and the two partition reads every tool needs. The
// engine's Kafka code creates its clients through here, so a handle is never destroyed twice
// and a bad setting is an InvalidArgument, not a crash.
#include <librdkafka/rdkafka.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "state/status.h"

namespace cm::topology {

using TopicPartition = std::pair<std::string, int32_t>;

struct KafkaHandleDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, KafkaHandleDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

inline PartitionList NewPartitionList() {
  return PartitionList(rd_kafka_topic_partition_list_new(4));
}

// A client of `type` for `bootstrap` with librdkafka's errors-only logging, then `settings`.
state::Result<KafkaHandle> NewKafkaClient(rd_kafka_type_t type, const std::string& bootstrap,
                                          const std::map<std::string, std::string>& settings);

// For clients that need callbacks (rebalance, delivery reports) and so build their own conf.
// Sets one setting; a bad one throws std::invalid_argument that names it.
void SetOrThrow(rd_kafka_conf_t* conf, const std::string& key, const std::string& value);
// A client made from `conf`, which it takes over, whose librdkafka messages become JSON log
// lines like everything else. Throws std::runtime_error when librdkafka refuses the conf.
KafkaHandle NewKafkaHandle(rd_kafka_type_t type, rd_kafka_conf_t* conf);

// Reads one partition from `from` to `end` (exclusive) with `consumer`, which must not be
// subscribed, calling `visit` for each record; stops early when `visit` returns false. Gives
// up after 60 s without reaching `end`. The consumer's assignment is cleared afterwards.
state::Status ReadPartition(rd_kafka_t* consumer, const std::string& topic, int32_t partition,
                            int64_t from, int64_t end,
                            const std::function<bool(const rd_kafka_message_t&)>& visit);

// The log start and end offsets of a partition.
state::Status QueryWatermarks(rd_kafka_t* rk, const std::string& topic, int32_t partition,
                              int64_t& low, int64_t& high);

}  // namespace cm::topology
