#pragma once

// The one in-process test harness. TestBroker: the embedded broker with a test's topics and the
// admin the streams create theirs with. InProcessInstance: the streams of one topology in this
// process and, when the test serves HTTP, what `cmstream run` puts around them: StreamsMetadata,
// QueryRouter and an HttpServer with the application's routes, plus an httplib client of that
// server. Every instance has a CommandSender. Several instances of one application id form one
// consumer group; Stop() then Start() is a clean restart with the same instance id, state directory
// and port. Tests of `cmstream` processes use child_process.h instead.
#include <httplib.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "child_process.h"
#include "state/status.h"
#include "topology/kafka/embedded_broker.h"
#include "topology/kafka/topic_admin.h"
#include "topology/query/command_sender.h"
#include "topology/query/http_server.h"
#include "topology/query/query_router.h"
#include "topology/query/streams_metadata.h"
#include "topology/query/streams_routes.h"
#include "topology/runtime/kafka_streams.h"
#include "topology/runtime/streams_config.h"

namespace cm::testing {

// The StreamsConfig of an in-process test application on the embedded broker.
inline topology::StreamsConfig EmbeddedStreamsConfig(const std::string& app_id,
                                                     const std::string& bootstrap,
                                                     const std::string& state_dir) {
  topology::StreamsConfig config;
  config.application_id = app_id;
  config.instance_id = "it";
  config.bootstrap_servers = bootstrap;
  config.state_dir = state_dir;
  config.broker_filters_aborted = false;  // the embedded broker does not filter aborted records
  config.consumer_overrides = topology::EmbeddedBroker::ConsumerOverrides();
  return config;
}

class TestBroker {
 public:
  // A started embedded broker with `topics` (name -> partitions) created.
  static state::Result<std::unique_ptr<TestBroker>> Start(
      const std::map<std::string, int>& topics = {}) {
    auto broker = topology::EmbeddedBroker::Start();
    if (!broker.ok()) return broker.status();
    std::unique_ptr<TestBroker> out(new TestBroker(std::move(broker).value()));
    for (const auto& [name, partitions] : topics) {
      if (auto s = out->CreateTopic(name, partitions); !s.ok()) return s;
    }
    return out;
  }

  const std::string& bootstrap_servers() const { return broker_->bootstrap_servers(); }
  state::Status CreateTopic(const std::string& name, int partitions) {
    return broker_->CreateTopic(name, partitions);
  }
  state::Status SetAvailable(bool available) { return broker_->SetAvailable(available); }
  topology::TopicAdmin& admin() const { return *admin_; }

 private:
  explicit TestBroker(std::unique_ptr<topology::EmbeddedBroker> broker)
      : broker_(std::move(broker)), admin_(topology::NewEmbeddedTopicAdmin(*broker_)) {}

  std::unique_ptr<topology::EmbeddedBroker> broker_;
  std::unique_ptr<topology::TopicAdmin> admin_;
};

class InProcessInstance;

struct InstanceOptions {
  std::string instance_id = "it";  // names the transactional producers: unique per instance
  std::string state_dir{};
  // Changes to the embedded StreamsConfig (threads, guarantee, listener, ...).
  std::function<void(topology::StreamsConfig&)> configure{};
  // Set: the instance serves HTTP like `cmstream run`, with these routes added to its server
  // (forwarding with the test cluster secret; its client sends the test admin key).
  std::function<void(InProcessInstance&)> add_routes{};
};

class InProcessInstance {
 public:
  // `broker` and `topology` must outlive the instance.
  InProcessInstance(const TestBroker& broker, const topology::Topology& topology,
                    InstanceOptions options)
      : broker_(broker), topology_(topology), options_(std::move(options)) {}
  ~InProcessInstance() { Stop(); }
  InProcessInstance(const InProcessInstance&) = delete;
  InProcessInstance& operator=(const InProcessInstance&) = delete;

  // Starts the streams and waits until they are ready (their assigned tasks restored) or have
  // failed (Unavailable, and streams() tells why); with routes, then announces the instance and
  // serves HTTP.
  state::Status Start() {
    config_ = EmbeddedStreamsConfig(topology_.application_id(), broker_.bootstrap_servers(),
                                    options_.state_dir);
    config_.instance_id = options_.instance_id;
    if (options_.configure) options_.configure(config_);
    streams_ = std::make_unique<topology::KafkaStreams>(topology_, config_, broker_.admin());
    if (auto s = streams_->Start(); !s.ok()) return s;
    // A stream thread that failed will not get ready: its failure is the answer.
    if (!WaitFor([&] { return streams_->Ready() || !streams_->Failure().empty(); },
                 std::chrono::seconds(30)) ||
        !streams_->Ready())
      return state::Status::Unavailable("not ready: " + streams_->ReadyReport().dump());
    sender_ = std::make_unique<topology::CommandSender>(*streams_, config_.bootstrap_servers);
    if (!options_.add_routes) return state::Status::OK();
    if (port_ == 0) port_ = FreePort();
    metadata_ = std::make_unique<topology::StreamsMetadata>(
        topology::StreamsMetadata::Options{
            .bootstrap_servers = config_.bootstrap_servers,
            .topic = topology::KafkaStreams::InstancesTopic(config_.application_id),
            .instance_id = config_.instance_id,
            .endpoint = "127.0.0.1:" + std::to_string(port_)},
        [this] { return streams_->RunningTasks(); });
    router_ = std::make_unique<topology::QueryRouter>(
        *streams_, *metadata_,
        topology::QueryForwarding{.signer = &signer_, .https = false, .ca_file = ""});
    server_ = std::make_unique<topology::HttpServer>();
    server_->SetClusterSigner(&signer_);
    topology::AddStreamsRoutes(*server_, *streams_, *metadata_);
    options_.add_routes(*this);
    if (auto s = server_->Start("127.0.0.1", port_); !s.ok()) return s;
    if (auto s = metadata_->Start(); !s.ok()) return s;
    client_ = AdminClient(port_);
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

  // Valid while the instance runs (a restart makes new ones); the server, router, metadata and
  // client only with routes.
  topology::KafkaStreams& streams() { return *streams_; }
  const topology::StreamsConfig& config() const { return config_; }
  topology::HttpServer& server() { return *server_; }
  topology::QueryRouter& router() { return *router_; }
  const topology::StreamsMetadata& metadata() const { return *metadata_; }
  topology::CommandSender& sender() { return *sender_; }
  httplib::Client& client() { return *client_; }
  int port() const { return port_; }

  // GET `path`: the parsed body (null when the request failed) and its status.
  nlohmann::json GetJson(const std::string& path, int* status = nullptr) {
    auto r = client_->Get(path);
    if (status) *status = r ? r->status : 0;
    if (!r) return nlohmann::json();
    return nlohmann::json::parse(r->body, nullptr, false);
  }

 private:
  const TestBroker& broker_;
  const topology::Topology& topology_;
  InstanceOptions options_;
  topology::StreamsConfig config_;
  int port_ = 0;
  std::unique_ptr<topology::KafkaStreams> streams_;
  topology::ClusterSigner signer_{kTestClusterSecret};
  std::unique_ptr<topology::StreamsMetadata> metadata_;
  std::unique_ptr<topology::QueryRouter> router_;
  std::unique_ptr<topology::CommandSender> sender_;
  std::unique_ptr<topology::HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace cm::testing
