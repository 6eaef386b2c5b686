#include "topology/kafka/topic_admin.h"

#include <httplib.h>
#include <librdkafka/rdkafka.h>

#include <nlohmann/json.hpp>

#include "topology/kafka/embedded_broker.h"
#include "topology/kafka/kafka_client.h"

namespace cm::topology {

using state::Result;
using state::Status;

namespace {

// Partition counts through a metadata request for all topics: asking for one named topic
// would make the embedded broker create it with a default partition count.
Result<std::map<std::string, int32_t>> ReadPartitionCounts(const std::string& bootstrap) {
  auto client = NewKafkaClient(RD_KAFKA_PRODUCER, bootstrap, {});
  if (!client.ok()) return client.status();
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t e = rd_kafka_metadata(client->get(), 1, nullptr, &md, 10000);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return Status::Unavailable(std::string("metadata request failed: ") + rd_kafka_err2str(e));
  }
  std::map<std::string, int32_t> counts;
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      counts[md->topics[i].topic] = md->topics[i].partition_cnt;
    }
  }
  rd_kafka_metadata_destroy(md);
  return counts;
}

class KafkaTopicAdmin final : public TopicAdmin {
 public:
  explicit KafkaTopicAdmin(std::string bootstrap) : bootstrap_(std::move(bootstrap)) {}

  Status EnsureTopics(const std::vector<TopicSpec>& topics) override {
    auto existing = PartitionCounts();
    if (!existing.ok()) return existing.status();
    std::vector<const TopicSpec*> missing;
    for (const auto& t : topics) {
      if (existing->count(t.name) == 0) missing.push_back(&t);
    }
    if (missing.empty()) return Status::OK();
    auto client = NewKafkaClient(RD_KAFKA_PRODUCER, bootstrap_, {});
    if (!client.ok()) return client.status();
    rd_kafka_t* rk = client->get();
    char err[512];
    std::vector<rd_kafka_NewTopic_t*> new_topics;
    for (const auto* t : missing) {
      rd_kafka_NewTopic_t* topic =
          rd_kafka_NewTopic_new(t->name.c_str(), t->partitions, -1, err, sizeof err);
      if (topic == nullptr) {
        rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());
        return Status::InvalidArgument("topic " + t->name + ": " + err);
      }
      if (t->compacted) rd_kafka_NewTopic_set_config(topic, "cleanup.policy", "compact");
      new_topics.push_back(topic);
    }
    rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, new_topics.data(), new_topics.size(), nullptr, queue);
    rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 30000);
    Status status = Status::OK();
    if (ev == nullptr) {
      status = Status::Unavailable("CreateTopics timed out");
    } else {
      const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev);
      size_t n = 0;
      const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(res, &n);
      for (size_t i = 0; i < n; ++i) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
          status = Status::Unavailable(std::string("cannot create ") +
                                       rd_kafka_topic_result_name(results[i]) + ": " +
                                       rd_kafka_err2str(e));
        }
      }
      rd_kafka_event_destroy(ev);
    }
    rd_kafka_NewTopic_destroy_array(new_topics.data(), new_topics.size());
    rd_kafka_queue_destroy(queue);
    return status;
  }

  Result<std::map<std::string, int32_t>> PartitionCounts() override {
    return ReadPartitionCounts(bootstrap_);
  }

 private:
  std::string bootstrap_;
};

class EmbeddedTopicAdmin final : public TopicAdmin {
 public:
  explicit EmbeddedTopicAdmin(EmbeddedBroker& broker) : broker_(broker) {}
  Status EnsureTopics(const std::vector<TopicSpec>& topics) override {
    auto existing = PartitionCounts();
    if (!existing.ok()) return existing.status();
    for (const auto& t : topics) {
      if (existing->count(t.name) != 0) continue;
      if (auto s = broker_.CreateTopic(t.name, t.partitions); !s.ok()) return s;
    }
    return Status::OK();
  }
  Result<std::map<std::string, int32_t>> PartitionCounts() override {
    return ReadPartitionCounts(broker_.bootstrap_servers());
  }

 private:
  EmbeddedBroker& broker_;
};

class RemoteEmbeddedTopicAdmin final : public TopicAdmin {
 public:
  RemoteEmbeddedTopicAdmin(std::string bootstrap, std::string url)
      : bootstrap_(std::move(bootstrap)), url_(std::move(url)) {}
  Status EnsureTopics(const std::vector<TopicSpec>& topics) override {
    nlohmann::json body = nlohmann::json::array();
    for (const auto& t : topics) body.push_back({{"name", t.name}, {"partitions", t.partitions}});
    httplib::Client client(url_);
    client.set_connection_timeout(5);
    client.set_read_timeout(30);
    auto res = client.Post("/topics", body.dump(), "application/json");
    if (!res) return Status::Unavailable("broker admin endpoint " + url_ + " did not answer");
    if (res->status != 200) {
      return Status::Unavailable("broker admin endpoint answered " + std::to_string(res->status) +
                                 ": " + res->body);
    }
    return Status::OK();
  }
  Result<std::map<std::string, int32_t>> PartitionCounts() override {
    return ReadPartitionCounts(bootstrap_);
  }

 private:
  std::string bootstrap_;
  std::string url_;
};

}  // namespace

std::unique_ptr<TopicAdmin> NewKafkaTopicAdmin(const std::string& bootstrap_servers) {
  return std::make_unique<KafkaTopicAdmin>(bootstrap_servers);
}

std::unique_ptr<TopicAdmin> NewEmbeddedTopicAdmin(EmbeddedBroker& broker) {
  return std::make_unique<EmbeddedTopicAdmin>(broker);
}

std::unique_ptr<TopicAdmin> NewRemoteEmbeddedTopicAdmin(const std::string& bootstrap_servers,
                                                        const std::string& admin_url) {
  return std::make_unique<RemoteEmbeddedTopicAdmin>(bootstrap_servers, admin_url);
}

}  // namespace cm::topology
