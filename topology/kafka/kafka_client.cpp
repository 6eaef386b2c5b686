#include "topology/kafka/kafka_client.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <utility>

#include "topology/common/log.h"
#include "topology/kafka/kafka_error.h"

namespace cm::topology {

rd_kafka_topic_t* TopicHandles::Get(const std::string& topic) {
  auto it = handles_.find(topic);
  if (it != handles_.end()) return it->second.get();
  rd_kafka_topic_t* handle = rd_kafka_topic_new(client_, topic.c_str(), nullptr);
  if (handle == nullptr) return nullptr;
  return handles_.emplace(topic, handle).first->second.get();
}

using state::Result;
using state::Status;

void KafkaHandleDeleter::operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }

namespace {

// librdkafka's own messages become JSON log lines like everything else.
void LogFromKafka(const rd_kafka_t*, int level, const char* facility, const char* message) {
  Log(level <= 3   ? LogLevel::kError
      : level == 4 ? LogLevel::kWarn
                   : LogLevel::kInfo,
      "librdkafka", {{"facility", facility}, {"message", message}});
}

}  // namespace

Status SetAll(rd_kafka_conf_t* conf, const std::map<std::string, std::string>& settings) {
  char err[512];
  for (const auto& [k, v] : settings) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
      return Status::InvalidArgument("Kafka setting " + k + "=" + v + ": " + err);
  }
  return Status::OK();
}

Result<KafkaHandle> CreateKafkaHandle(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  rd_kafka_conf_set_log_cb(conf, &LogFromKafka);
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return Status::Unavailable(std::string("cannot create Kafka client: ") + err);
  }
  return KafkaHandle(rk);
}

Result<KafkaHandle> NewKafkaClient(rd_kafka_type_t type, const std::string& bootstrap,
                                   const std::map<std::string, std::string>& settings) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::map<std::string, std::string> all = {{"bootstrap.servers", bootstrap}, {"log_level", "3"}};
  for (const auto& [k, v] : settings) all[k] = v;
  if (auto s = SetAll(conf, all); !s.ok()) {
    rd_kafka_conf_destroy(conf);
    return s;
  }
  return CreateKafkaHandle(type, conf);
}

void SetOrThrow(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  if (auto s = SetAll(conf, {{key, value}}); !s.ok()) throw std::invalid_argument(s.message());
}

KafkaHandle NewKafkaHandle(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  auto handle = CreateKafkaHandle(type, conf);
  if (!handle.ok()) throw std::runtime_error(handle.status().message());
  return std::move(handle).value();
}

PartitionReader::PartitionReader(rd_kafka_t* consumer, std::string topic, int32_t partition,
                                 int64_t from, int64_t end)
    : consumer_(consumer),
      topic_(std::move(topic)),
      partition_(partition),
      end_(end),
      next_(from),
      done_(from >= end) {}

PartitionReader::~PartitionReader() {
  if (!assigned_) return;
  if (rd_kafka_resp_err_t err = rd_kafka_assign(consumer_, nullptr)) {
    // The read itself is over and the next reader's assign replaces the assignment: logged only.
    Log(LogLevel::kWarn, "unassign_failed",
        {{"topic", topic_}, {"partition", partition_}, {"error", rd_kafka_err2str(err)}});
  }
}

Result<bool> PartitionReader::Read(std::chrono::steady_clock::time_point deadline,
                                   const Visit& visit) {
  if (done_) return true;
  if (!assigned_) {
    PartitionList list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), topic_.c_str(), partition_)->offset = next_;
    if (rd_kafka_resp_err_t err = rd_kafka_assign(consumer_, list.get())) {
      return Status::Unavailable("cannot assign " + topic_ + "[" + std::to_string(partition_) +
                                 "]: " + rd_kafka_err2str(err));
    }
    assigned_ = true;
  }
  while (!done_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    rd_kafka_message_t* m =
        rd_kafka_consumer_poll(consumer_, static_cast<int>(std::min<int64_t>(left.count(), 100)));
    if (m == nullptr) continue;
    std::unique_ptr<rd_kafka_message_t, void (*)(rd_kafka_message_t*)> owned(
        m, &rd_kafka_message_destroy);
    if (m->rkt == nullptr || m->partition != partition_ || topic_ != rd_kafka_topic_name(m->rkt))
      continue;
    auto kind = ClassifyConsumed(*m, topic_);
    if (!kind.ok()) return kind.status();
    if (*kind == ConsumedMessage::kEnd) {
      done_ = true;
    } else if (*kind == ConsumedMessage::kRecord) {
      next_ = m->offset + 1;
      auto go_on = visit(*m);
      if (!go_on.ok()) return go_on.status();
      done_ = !*go_on || next_ >= end_;
    }
  }
  return true;
}

Status ReadPartition(rd_kafka_t* consumer, const std::string& topic, int32_t partition,
                     int64_t from, int64_t end,
                     const std::function<bool(const rd_kafka_message_t&)>& visit) {
  PartitionReader reader(consumer, topic, partition, from, end);
  auto done = reader.Read(std::chrono::steady_clock::now() + std::chrono::seconds(60),
                          [&](const rd_kafka_message_t& m) -> Result<bool> { return visit(m); });
  if (!done.ok()) return done.status();
  if (!*done) {
    return Status::Unavailable("reading " + topic + "[" + std::to_string(partition) +
                               "] timed out at offset " + std::to_string(reader.next_offset()));
  }
  return Status::OK();
}

std::vector<Header> MessageHeaders(const rd_kafka_message_t& m) {
  std::vector<Header> out;
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(&m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0;
       rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
       ++i) {
    out.push_back({name, value ? std::string(static_cast<const char*>(value), size) : ""});
  }
  return out;
}

std::optional<std::string_view> LastHeader(const rd_kafka_message_t& m, const char* name) {
  rd_kafka_headers_t* headers = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  if (rd_kafka_message_headers(&m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      rd_kafka_header_get_last(headers, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return std::nullopt;
  if (value == nullptr) return std::string_view();
  return std::string_view(static_cast<const char*>(value), size);
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

Status QueryWatermarks(rd_kafka_t* rk, const std::vector<TopicPartition>& partitions,
                       std::map<TopicPartition, std::pair<int64_t, int64_t>>& watermarks) {
  if (partitions.empty()) return Status::OK();
  // ListOffsets by "timestamp": BEGINNING (-2) answers the log start, END (-1) the end.
  for (const int64_t which : {RD_KAFKA_OFFSET_BEGINNING, RD_KAFKA_OFFSET_END}) {
    PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
    for (const auto& [topic, partition] : partitions)
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = which;
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, list.get(), 10000);
    for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; ++i) {
      const rd_kafka_topic_partition_t& p = list->elems[i];
      if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return Status::Unavailable("cannot read offsets of " + std::string(p.topic) + "[" +
                                   std::to_string(p.partition) + "]: " + rd_kafka_err2str(p.err));
      }
      auto& w = watermarks[{p.topic, p.partition}];
      (which == RD_KAFKA_OFFSET_BEGINNING ? w.first : w.second) = p.offset;
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::Unavailable("cannot read offsets of " + std::to_string(partitions.size()) +
                                 " partitions: " + rd_kafka_err2str(err));
    }
  }
  return Status::OK();
}

}  // namespace cm::topology
