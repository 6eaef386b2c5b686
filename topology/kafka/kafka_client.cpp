#include "topology/kafka/kafka_client.h"

#include <chrono>
#include <stdexcept>

#include "topology/common/log.h"

namespace cm::topology {

using state::Result;
using state::Status;

Result<KafkaHandle> NewKafkaClient(rd_kafka_type_t type, const std::string& bootstrap,
                                   const std::map<std::string, std::string>& settings) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::map<std::string, std::string> all = {{"bootstrap.servers", bootstrap}, {"log_level", "3"}};
  for (const auto& [k, v] : settings) all[k] = v;
  for (const auto& [k, v] : all) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidArgument("Kafka setting " + k + ": " + err);
    }
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::Unavailable(std::string("cannot create Kafka client: ") + err);
  }
  return KafkaHandle(rk);
}

namespace {

// librdkafka's own messages become JSON log lines like everything else.
void LogFromKafka(const rd_kafka_t*, int level, const char* facility, const char* message) {
  Log(level <= 3   ? LogLevel::kError
      : level == 4 ? LogLevel::kWarn
                   : LogLevel::kInfo,
      "librdkafka", {{"facility", facility}, {"message", message}});
}

}  // namespace

void SetOrThrow(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
    throw std::invalid_argument("Kafka setting " + key + "=" + value + ": " + err);
  }
}

KafkaHandle NewKafkaHandle(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  rd_kafka_conf_set_log_cb(conf, &LogFromKafka);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("cannot create Kafka client: ") + err);
  }
  return KafkaHandle(rk);
}

Status ReadPartition(rd_kafka_t* consumer, const std::string& topic, int32_t partition,
                     int64_t from, int64_t end,
                     const std::function<bool(const rd_kafka_message_t&)>& visit) {
  if (from >= end) return Status::OK();
  PartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = from;
  if (rd_kafka_resp_err_t err = rd_kafka_assign(consumer, list.get())) {
    return Status::Unavailable(std::string("cannot assign ") + topic + ": " +
                               rd_kafka_err2str(err));
  }
  Status status = Status::OK();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (int64_t next = from; next < end;) {
    if (std::chrono::steady_clock::now() > deadline) {
      status = Status::Unavailable("reading " + topic + "[" + std::to_string(partition) +
                                   "] timed out at offset " + std::to_string(next));
      break;
    }
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 500);
    if (m == nullptr) continue;
    bool mine =
        m->rkt != nullptr && m->partition == partition && topic == rd_kafka_topic_name(m->rkt);
    bool go_on = true;
    if (mine && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      next = end;
    } else if (mine && m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      next = m->offset + 1;
      go_on = visit(*m);
    } else if (mine) {
      status = Status::Unavailable("reading " + topic + ": " + rd_kafka_message_errstr(m));
      go_on = false;
    }
    rd_kafka_message_destroy(m);
    if (!go_on) break;
  }
  if (rd_kafka_resp_err_t err = rd_kafka_assign(consumer, nullptr)) {
    // The read itself is done and the next read's assign replaces the assignment: logged only.
    Log(LogLevel::kWarn, "unassign_failed",
        {{"topic", topic}, {"partition", partition}, {"error", rd_kafka_err2str(err)}});
  }
  return status;
}

Status QueryWatermarks(rd_kafka_t* rk, const std::string& topic, int32_t partition, int64_t& low,
                       int64_t& high) {
  rd_kafka_resp_err_t err =
      rd_kafka_query_watermark_offsets(rk, topic.c_str(), partition, &low, &high, 10000);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::Unavailable("cannot read offsets of " + topic + "[" + std::to_string(partition) +
                               "]: " + rd_kafka_err2str(err));
  }
  return Status::OK();
}

}  // namespace cm::topology
