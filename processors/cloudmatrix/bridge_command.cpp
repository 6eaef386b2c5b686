#include <iostream>

#include "processors/cloudmatrix/command_line.h"
#include "processors/cloudmatrix/subcommand.h"
#include "topology/common/log.h"
#include "topology/query/http_server.h"
#include "topology/runtime/streams_config.h"

namespace cm::cloudmatrix {

using topology::Log;
using topology::LogLevel;

namespace {

class BridgeCommand final : public Subcommand {
 public:
  explicit BridgeCommand(CLI::App& app)
      : Subcommand(app.add_subcommand(
            "bridge",
            "consume RabbitMQ and produce to Kafka (acked only once Kafka acknowledged)")) {
    CLI::App* cmd = cli_;
    AddBrokerFlags(cmd, cluster_);
    cmd->add_option("--partitions", partitions_,
                    "partitions of the target and DLQ topics if the bridge creates them")
        ->envname("CM_PARTITIONS")
        ->capture_default_str();
    cmd->add_option("--http", http_, "HOST:PORT serving /health and /metrics (default: none)")
        ->envname("CM_HTTP");
    AddBridgeFlags(cmd, bridge_,
                   "RabbitMQ to consume from (default amqp://guest:guest@127.0.0.1:5672/)");
  }

  int Execute() override {
    sigset_t signals = BlockTerminationSignals();
    if (cluster_.brokers.empty()) {
      std::cerr << "give --brokers HOST:PORT,...\n";
      return 2;
    }
    if (bridge_.amqp_url.empty()) bridge_.amqp_url = bridge_.options.amqp_url;
    const std::string dlq_topic = topology::StreamsConfig{}.dlq_topic;
    if (!ResolveBridgeFlags(bridge_, cluster_.brokers, dlq_topic)) return 2;
    // The topics it writes to exist before the first record, with the partition count the
    // applications expect (a topic created on first use would get the broker's default).
    auto cluster = ConnectCluster(cluster_, false);
    if (!cluster.ok()) {
      std::cerr << cluster.status().message() << '\n';
      return 2;
    }
    if (auto s = cluster->admin->EnsureTopics(
            {{bridge_.options.topic, partitions_}, {dlq_topic, partitions_}});
        !s.ok()) {
      Log(LogLevel::kWarn, "topics_not_ensured", {{"error", s.ToString()}});
    }
    rabbitmq::AmqpBridge bridge(bridge_.options);
    topology::HttpServer server;
    if (!http_.empty()) {
      auto http = ParseHostPort(http_);
      if (!http.ok()) {
        std::cerr << http.status().message() << '\n';
        return 2;
      }
      server.AddMetrics([&bridge] { return bridge.RenderMetrics(); });
      if (auto s = server.Start(http->host, http->port); !s.ok()) {
        Log(LogLevel::kError, "http_failed", {{"error", s.ToString()}});
        return 1;
      }
      Log(LogLevel::kInfo, "http_listening", {{"host", http->host}, {"port", server.port()}});
    }
    if (auto s = bridge.Start(); !s.ok()) {
      Log(LogLevel::kError, "bridge_failed", {{"error", s.ToString()}});
      return 2;
    }
    WaitForSignal(signals, [] { return true; });
    bridge.Stop();
    server.Stop();
    return 0;
  }

 private:
  BrokerFlags cluster_;
  int partitions_ = 8;
  std::string http_;
  BridgeFlags bridge_;
};

}  // namespace

std::unique_ptr<Subcommand> AddBridgeCommand(CLI::App& app) {
  return std::make_unique<BridgeCommand>(app);
}

}  // namespace cm::cloudmatrix
