#pragma once

// One instance of the usage application in process, wired as `cmstream run --topology
// cloudmatrix` wires it: KafkaStreams over the usage topology, StreamsMetadata, QueryRouter,
// CommandSender and an HttpServer with the usage routes, plus an httplib client of that server.
// Several instances with one application id form one consumer group. Stop() then Start() is a
// clean restart: the same instance id, state directory and HTTP port.
#include <httplib.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "child_process.h"
#include "embedded_streams.h"
#include "processors/usage/usage_options.h"
#include "processors/usage/usage_routes.h"
#include "processors/usage/usage_topology.h"
#include "state/status.h"
#include "topology/kafka/embedded_broker.h"
#include "topology/kafka/topic_admin.h"
#include "topology/query/command_sender.h"
#include "topology/query/http_server.h"
#include "topology/query/query_router.h"
#include "topology/query/streams_metadata.h"
#include "topology/runtime/kafka_streams.h"

namespace cm::testing {

// An embedded broker with the usage application's topics, and an admin for it.
struct UsageBroker {
  std::unique_ptr<topology::EmbeddedBroker> broker;
  std::unique_ptr<topology::TopicAdmin> admin;

  static state::Result<UsageBroker> Start(int partitions) {
    auto broker = topology::EmbeddedBroker::Start();
    if (!broker.ok()) return broker.status();
    UsageBroker out{std::move(broker).value(), nullptr};
    for (const char* t : {"cloudmatrix.events", "cloudmatrix.commands", "cloudmatrix.quota-alerts"})
      if (auto s = out.broker->CreateTopic(t, partitions); !s.ok()) return s;
    out.admin = topology::NewEmbeddedTopicAdmin(*out.broker);
    return out;
  }
  const std::string& bootstrap() const { return broker->bootstrap_servers(); }
};

struct UsageInstanceOptions {
  std::string application_id = "it-usage";
  std::string instance_id = "it";  // names the transactional producers: unique per instance
  std::string state_dir{};
  usage::UsageOptions usage{};  // for the topology and the routes alike
  topology::StateSnapshotListener* snapshot_listener = nullptr;  // not owned; may be null
};

class UsageInstance {
 public:
  UsageInstance(const UsageBroker& broker, UsageInstanceOptions options)
      : broker_(broker), options_(std::move(options)) {}
  ~UsageInstance() { Stop(); }
  UsageInstance(const UsageInstance&) = delete;
  UsageInstance& operator=(const UsageInstance&) = delete;

  // Starts the streams and waits until they are ready (their assigned tasks restored), then
  // announces the instance and serves HTTP.
  state::Status Start() {
    if (!topology_) {
      topology::TopologyBuilder builder;
      if (auto s = usage::AddUsageTopology(builder, options_.usage); !s.ok()) return s;
      auto built = builder.Build(options_.application_id);
      if (!built.ok()) return built.status();
      topology_ = std::make_unique<topology::Topology>(std::move(built).value());
    }
    topology::StreamsConfig config =
        EmbeddedStreamsConfig(options_.application_id, broker_.bootstrap(), options_.state_dir);
    config.instance_id = options_.instance_id;
    config.snapshot_listener = options_.snapshot_listener;
    streams_ = std::make_unique<topology::KafkaStreams>(*topology_, config, *broker_.admin);
    if (auto s = streams_->Start(); !s.ok()) return s;
    if (!WaitFor([&] { return streams_->Ready(); }, std::chrono::seconds(30)))
      return state::Status::Unavailable("not ready: " + streams_->ReadyReport().dump());
    if (port_ == 0) port_ = FreePort();
    metadata_ = std::make_unique<topology::StreamsMetadata>(
        topology::StreamsMetadata::Options{
            .bootstrap_servers = config.bootstrap_servers,
            .topic = topology::KafkaStreams::InstancesTopic(config.application_id),
            .instance_id = config.instance_id,
            .endpoint = "127.0.0.1:" + std::to_string(port_)},
        [this] { return streams_->RunningTasks(); });
    router_ = std::make_unique<topology::QueryRouter>(*streams_, *metadata_);
    sender_ = std::make_unique<topology::CommandSender>(*streams_, broker_.bootstrap());
    server_ = std::make_unique<topology::HttpServer>();
    usage::AddUsageRoutes(
        *server_, *streams_, *router_, *sender_,
        [this](const std::string& topic, const std::string& key, const std::string& value,
               int32_t partition) {
          ++events_appended_;
          return sender_->Append(topic, key, value, partition);
        },
        options_.usage);
    if (auto s = server_->Start("127.0.0.1", port_); !s.ok()) return s;
    if (auto s = metadata_->Start(); !s.ok()) return s;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(30, 0);
    return state::Status::OK();
  }

  // A clean stop: HTTP first, then the announcement of no tasks, then the streams (which
  // commit, close their tasks and leave the group). Local state stays on disk.
  void Stop() {
    client_.reset();
    if (server_) server_->Stop();
    if (metadata_) metadata_->Stop();
    server_.reset();
    router_.reset();
    metadata_.reset();
    sender_.reset();
    if (streams_) streams_->Stop();
    streams_.reset();
  }

  // Valid while the instance runs (a restart makes a new one).
  httplib::Client& client() { return *client_; }
  topology::KafkaStreams& streams() { return *streams_; }
  const UsageInstanceOptions& options() const { return options_; }
  int port() const { return port_; }
  // Events appended by this instance's POST /v1/usage/events.
  int events_appended() const { return events_appended_.load(); }

  // Whether the task that owns `org` runs on this instance now.
  bool Owns(const std::string& org) const {
    const int sub = *streams_->topology().SubTopologyOfSource(options_.usage.events_topic);
    const std::string task = streams_->TaskForKey(sub, org).ToString();
    for (const auto& t : streams_->RunningTasks())
      if (t == task) return true;
    return false;
  }

  // GET `path`: the parsed body (null when the request failed) and its status.
  nlohmann::json GetJson(const std::string& path, int* status = nullptr) {
    auto r = client_->Get(path);
    if (status) *status = r ? r->status : 0;
    if (!r) return nlohmann::json();
    return nlohmann::json::parse(r->body, nullptr, false);
  }

 private:
  const UsageBroker& broker_;
  UsageInstanceOptions options_;
  int port_ = 0;
  std::unique_ptr<topology::Topology> topology_;
  std::unique_ptr<topology::KafkaStreams> streams_;
  std::unique_ptr<topology::StreamsMetadata> metadata_;
  std::unique_ptr<topology::QueryRouter> router_;
  std::unique_ptr<topology::CommandSender> sender_;
  std::unique_ptr<topology::HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
  std::atomic<int> events_appended_{0};
};

}  // namespace cm::testing
