#include "topology/query/streams_metadata.h"

#include <librdkafka/rdkafka.h>

#include <nlohmann/json.hpp>

#include "topology/common/log.h"
#include "topology/common/thread_name.h"
#include "topology/common/wall_clock.h"
#include "topology/kafka/kafka_client.h"

namespace cm::topology {

struct StreamsMetadata::Clients {
  KafkaHandle producer;
  KafkaHandle consumer;
};

StreamsMetadata::StreamsMetadata(Options options,
                                 std::function<std::vector<std::string>()> local_tasks)
    : options_(std::move(options)), local_tasks_(std::move(local_tasks)) {}

StreamsMetadata::~StreamsMetadata() { Stop(); }

state::Status StreamsMetadata::Start() {
  auto producer =
      NewKafkaClient(RD_KAFKA_PRODUCER, options_.bootstrap_servers, {{"linger.ms", "0"}});
  if (!producer.ok()) return producer.status();
  auto consumer =
      NewKafkaClient(RD_KAFKA_CONSUMER, options_.bootstrap_servers,
                     {{"group.id", "cmstream-metadata"}, {"enable.auto.commit", "false"}});
  if (!consumer.ok()) return consumer.status();
  clients_ = std::make_unique<Clients>();
  clients_->producer = std::move(producer).value();
  clients_->consumer = std::move(consumer).value();
  if (rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(clients_->consumer.get())) {
    return state::Status::Unavailable(std::string("metadata consumer: poll_set_consumer: ") +
                                      rd_kafka_err2str(err));
  }
  PartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), options_.topic.c_str(), 0)->offset =
      RD_KAFKA_OFFSET_BEGINNING;
  if (rd_kafka_resp_err_t err = rd_kafka_assign(clients_->consumer.get(), list.get())) {
    return state::Status::Unavailable("cannot read " + options_.topic + ": " +
                                      rd_kafka_err2str(err));
  }
  thread_ = std::thread([this] {
    NameCurrentThread("cm-metadata");
    Run();
  });
  return state::Status::OK();
}

void StreamsMetadata::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
  Announce({}, true);
  if (rd_kafka_resp_err_t err = rd_kafka_flush(clients_->producer.get(), 5000)) {
    // Peers then learn of the departure when the announcements stop, a little later.
    Log(LogLevel::kWarn, "metadata_leave_not_sent",
        {{"topic", options_.topic}, {"error", rd_kafka_err2str(err)}});
  }
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
  rd_kafka_resp_err_t err = rd_kafka_producev(
      clients_->producer.get(), RD_KAFKA_V_TOPIC(options_.topic.c_str()), RD_KAFKA_V_PARTITION(0),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_KEY(const_cast<char*>(options_.instance_id.data()), options_.instance_id.size()),
      RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // The next announcement (every interval) says the same; peers keep the previous one.
    Log(LogLevel::kWarn, "metadata_announce_failed",
        {{"topic", options_.topic}, {"error", rd_kafka_err2str(err)}});
  }
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
