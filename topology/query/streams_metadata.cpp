#include "topology/query/streams_metadata.h"

#include <librdkafka/rdkafka.h>

#include <nlohmann/json.hpp>

#include "topology/common/log.h"
#include "topology/common/wall_clock.h"

namespace cm::topology {

namespace {

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};

std::unique_ptr<rd_kafka_t, KafkaDeleter> NewClient(rd_kafka_type_t type,
                                                    const std::string& bootstrap,
                                                    std::string& error) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  if (type == RD_KAFKA_CONSUMER) {
    rd_kafka_conf_set(conf, "group.id", "cmstream-metadata", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
  } else {
    rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof err);
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    error = err;
  }
  return std::unique_ptr<rd_kafka_t, KafkaDeleter>(rk);
}

}  // namespace

struct StreamsMetadata::Clients {
  std::unique_ptr<rd_kafka_t, KafkaDeleter> producer;
  std::unique_ptr<rd_kafka_t, KafkaDeleter> consumer;
};

StreamsMetadata::StreamsMetadata(Options options,
                                 std::function<std::vector<std::string>()> local_tasks)
    : options_(std::move(options)), local_tasks_(std::move(local_tasks)) {}

StreamsMetadata::~StreamsMetadata() { Stop(); }

state::Status StreamsMetadata::Start() {
  clients_ = std::make_unique<Clients>();
  std::string error;
  clients_->producer = NewClient(RD_KAFKA_PRODUCER, options_.bootstrap_servers, error);
  clients_->consumer = NewClient(RD_KAFKA_CONSUMER, options_.bootstrap_servers, error);
  if (!clients_->producer || !clients_->consumer) return state::Status::Unavailable(error);
  rd_kafka_poll_set_consumer(clients_->consumer.get());
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, options_.topic.c_str(), 0)->offset =
      RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(clients_->consumer.get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  thread_ = std::thread([this] { Run(); });
  return state::Status::OK();
}

void StreamsMetadata::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
  Announce({}, true);
  rd_kafka_flush(clients_->producer.get(), 5000);
}

void StreamsMetadata::Run() {
  auto next = std::chrono::steady_clock::now();
  while (!stop_) {
    if (std::chrono::steady_clock::now() >= next) {
      Announce(local_tasks_());
      next = std::chrono::steady_clock::now() + options_.interval;
    }
    Consume(100);
  }
}

void StreamsMetadata::Announce(const std::vector<std::string>& tasks, bool leaving) {
  nlohmann::json j = {{"instanceId", options_.instance_id},
                      {"endpoint", options_.endpoint},
                      {"tasks", tasks},
                      {"leaving", leaving}};
  std::string value = j.dump();
  rd_kafka_producev(
      clients_->producer.get(), RD_KAFKA_V_TOPIC(options_.topic.c_str()), RD_KAFKA_V_PARTITION(0),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY(const_cast<char*>(options_.instance_id.data()), options_.instance_id.size()),
      RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_END);
  rd_kafka_poll(clients_->producer.get(), 0);
}

void StreamsMetadata::Consume(int timeout_ms) {
  for (int i = 0;; ++i) {
    rd_kafka_message_t* m =
        rd_kafka_consumer_poll(clients_->consumer.get(), i == 0 ? timeout_ms : 0);
    if (m == nullptr) return;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->payload != nullptr) {
      auto j = nlohmann::json::parse(std::string_view(static_cast<const char*>(m->payload), m->len),
                                     nullptr, false);
      if (j.is_object() && j.contains("instanceId")) {
        InstanceInfo info;
        info.instance_id = j.value("instanceId", "");
        info.endpoint = j.value("endpoint", "");
        info.tasks = j.value("tasks", std::vector<std::string>{});
        info.updated_ms = rd_kafka_message_timestamp(m, nullptr);
        std::lock_guard<std::mutex> lock(mu_);
        instances_[info.instance_id] = std::move(info);
      }
    }
    rd_kafka_message_destroy(m);
  }
}

std::optional<InstanceInfo> StreamsMetadata::OwnerOf(const std::string& task) const {
  int64_t now = WallClockMs();
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<InstanceInfo> best;
  for (const auto& [id, info] : instances_) {
    if (now - info.updated_ms > options_.liveness.count()) continue;
    if (std::find(info.tasks.begin(), info.tasks.end(), task) == info.tasks.end()) continue;
    if (!best || info.updated_ms > best->updated_ms) best = info;
  }
  return best;
}

std::vector<InstanceInfo> StreamsMetadata::Instances() const {
  int64_t now = WallClockMs();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<InstanceInfo> out;
  for (const auto& [id, info] : instances_) {
    if (now - info.updated_ms <= options_.liveness.count()) out.push_back(info);
  }
  return out;
}

}  // namespace cm::topology
