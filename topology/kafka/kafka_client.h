#pragma once

// Owning handles for librdkafka clients and the two partition reads every tool needs. The
// engine's Kafka code creates its clients through here, so a handle is never destroyed twice
// and a bad setting is an InvalidArgument, not a crash.
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "state/status.h"
#include "topology/kafka/kafka_handle.h"
#include "topology/processor/record.h"

namespace cm::topology {

using TopicPartition = std::pair<std::string, int32_t>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

inline PartitionList NewPartitionList() {
  return PartitionList(rd_kafka_topic_partition_list_new(4));
}

// The message of an error a librdkafka call returned, destroying the error: what the callers of
// rd_kafka_incremental_assign, the transaction calls and the like report.
inline std::string TakeErrorMessage(rd_kafka_error_t* error) {
  std::string what = rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);
  return what;
}

// The topic handles of one client, each created on first use and held for the client's life
// (destroy the TopicHandles before the client). Producing by name takes the client's write lock
// and scans its topic list for every record; and a new handle asks for its topic's leader at
// once, where a consumer assigned partitions of a topic it has not seen waits for its next
// metadata refresh (0.2-0.5 s in a restore of 256 tasks) before fetching them.
class TopicHandles {
 public:
  explicit TopicHandles(rd_kafka_t* client) : client_(client) {}
  // Null for a name librdkafka refuses (rd_kafka_last_error() says why).
  rd_kafka_topic_t* Get(const std::string& topic);

 private:
  struct Deleter {
    void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
  };
  rd_kafka_t* client_;
  std::unordered_map<std::string, std::unique_ptr<rd_kafka_topic_t, Deleter>> handles_;
};

// A client of `type` for `bootstrap` with librdkafka's errors-only logging, then `settings`.
[[nodiscard]] state::Result<KafkaHandle> NewKafkaClient(
    rd_kafka_type_t type, const std::string& bootstrap,
    const std::map<std::string, std::string>& settings);

// Sets each of `settings` on `conf`; InvalidArgument naming the first that librdkafka refuses.
[[nodiscard]] state::Status SetAll(rd_kafka_conf_t* conf,
                                   const std::map<std::string, std::string>& settings);
// A client made from `conf`, which it takes over (also on failure), whose librdkafka messages
// become JSON log lines like everything else. Unavailable when librdkafka refuses the conf.
[[nodiscard]] state::Result<KafkaHandle> CreateKafkaHandle(rd_kafka_type_t type,
                                                           rd_kafka_conf_t* conf);

// For clients that need callbacks (rebalance, delivery reports) and so build their own conf.
// Sets one setting; a bad one throws std::invalid_argument that names it.
void SetOrThrow(rd_kafka_conf_t* conf, const std::string& key, const std::string& value);
// CreateKafkaHandle for constructors: throws std::runtime_error when librdkafka refuses the conf.
KafkaHandle NewKafkaHandle(rd_kafka_type_t type, rd_kafka_conf_t* conf);

// Kafka Streams' "assign one partition and read it to its end", for a consumer that is not
// subscribed: restores, republish scans, the reset tool. Reads `topic`[`partition`] from `from`
// up to `end` (exclusive) or the end-of-partition event (under read_committed, the last stable
// offset), in slices that each end at a deadline, so a stream thread can poll its group
// consumer between them. Records of other partitions (left from an earlier assignment) are
// skipped; errors librdkafka retries itself are waited out; any other error ends the read. The
// partition is assigned at the first Read and unassigned when the reader is destroyed.
class PartitionReader {
 public:
  // Each record: true to read on, false to stop here (the read is then done), or an error,
  // which ends the read with that error.
  using Visit = std::function<state::Result<bool>(const rd_kafka_message_t&)>;

  PartitionReader(rd_kafka_t* consumer, std::string topic, int32_t partition, int64_t from,
                  int64_t end);
  ~PartitionReader();
  PartitionReader(const PartitionReader&) = delete;
  PartitionReader& operator=(const PartitionReader&) = delete;

  // Reads until the end or `deadline`: true when the end was reached (or `visit` stopped it),
  // false when the deadline came first (call again to go on).
  [[nodiscard]] state::Result<bool> Read(std::chrono::steady_clock::time_point deadline,
                                         const Visit& visit);
  // The offset after the last record read.
  int64_t next_offset() const { return next_; }

 private:
  rd_kafka_t* consumer_;
  std::string topic_;
  int32_t partition_;
  int64_t end_;
  int64_t next_;
  bool assigned_ = false;
  bool done_ = false;
};

// Reads one partition from `from` to `end` (exclusive) in one go with a PartitionReader,
// calling `visit` for each record; stops early when `visit` returns false. Gives up after 60 s
// without reaching `end`.
[[nodiscard]] state::Status ReadPartition(
    rd_kafka_t* consumer, const std::string& topic, int32_t partition, int64_t from, int64_t end,
    const std::function<bool(const rd_kafka_message_t&)>& visit);

// Every header of `m`, in order (a header without a value has an empty one).
std::vector<Header> MessageHeaders(const rd_kafka_message_t& m);
// The value of the last header called `name` of `m`, if it has one; valid while `m` lives.
std::optional<std::string_view> LastHeader(const rd_kafka_message_t& m, const char* name);

// The log start and end offsets of a partition.
[[nodiscard]] state::Status QueryWatermarks(rd_kafka_t* rk, const std::string& topic,
                                            int32_t partition, int64_t& low, int64_t& high);

// The log start and end offsets of many partitions: two ListOffsets requests per broker in all,
// where one partition at a time costs two round trips each (a restore of 256 tasks spent 0.1 s
// on them). Fills `watermarks` (partition -> {low, high}) for every partition of `partitions`.
[[nodiscard]] state::Status QueryWatermarks(
    rd_kafka_t* rk, const std::vector<TopicPartition>& partitions,
    std::map<TopicPartition, std::pair<int64_t, int64_t>>& watermarks);

}  // namespace cm::topology
