#pragma once

// The CloudMatrix applications on the in-process harness (in_process.h), wired as `cmstream run
// --topology cloudmatrix` wires them: the API keys, the usage and the teams topologies, and
// their routes on the instance's HTTP server, with the test admin key. Stop() then Start() is a
// clean restart.
#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "in_process.h"
#include "processors/auth/auth_application.h"
#include "processors/teams/teams_routes.h"
#include "processors/teams/teams_topology.h"
#include "processors/usage/usage_options.h"
#include "processors/usage/usage_routes.h"
#include "processors/usage/usage_topology.h"
#include "processors/webhooks/webhooks_application.h"
#include "processors/webhooks/webhooks_topology.h"
#include "state/status.h"
#include "topology/common/wall_clock.h"

namespace cm::testing {

// An embedded broker with the usage and teams applications' topics.
inline state::Result<std::unique_ptr<TestBroker>> StartUsageBroker(int partitions) {
  return TestBroker::Start({{"cloudmatrix.events", partitions},
                            {"cloudmatrix.commands", partitions},
                            {"cloudmatrix.quota-alerts", partitions},
                            {"cloudmatrix.team-events", partitions},
                            {"cloudmatrix.webhook-attempts", partitions}});
}

struct UsageInstanceOptions {
  std::string application_id = "it-usage";
  std::string instance_id = "it";  // names the transactional producers: unique per instance
  std::string state_dir{};
  usage::UsageOptions usage{};  // for the topology and the routes alike
  teams::TeamsOptions teams{};
  // With these, the webhooks application too (its sender is the test's).
  std::optional<webhooks::WebhooksOptions> webhooks{};
  topology::StateSnapshotListener* snapshot_listener = nullptr;  // not owned; may be null
};

class UsageInstance {
 public:
  UsageInstance(const TestBroker& broker, UsageInstanceOptions options)
      : broker_(broker), options_(std::move(options)) {}
  UsageInstance(const UsageInstance&) = delete;
  UsageInstance& operator=(const UsageInstance&) = delete;

  state::Status Start() {
    if (!topology_) {
      topology::TopologyBuilder builder;
      if (auto s = auth::AuthApplication().AddTo(builder); !s.ok()) return s;
      if (auto s = usage::AddUsageTopology(builder, options_.usage); !s.ok()) return s;
      if (auto s = teams::AddTeamsTopology(builder, options_.teams); !s.ok()) return s;
      if (options_.webhooks) {
        if (auto s = webhooks::AddWebhooksTopology(builder, *options_.webhooks); !s.ok()) return s;
      }
      auto built = builder.Build(options_.application_id);
      if (!built.ok()) return built.status();
      topology_ = std::make_unique<topology::Topology>(std::move(built).value());
      instance_ = std::make_unique<InProcessInstance>(
          broker_, *topology_,
          InstanceOptions{.instance_id = options_.instance_id,
                          .state_dir = options_.state_dir,
                          .configure =
                              [this](topology::StreamsConfig& config) {
                                config.snapshot_listener = options_.snapshot_listener;
                              },
                          .add_routes = [this](InProcessInstance& i) { AddRoutes(i); }});
    }
    if (auto s = instance_->Start(); !s.ok()) return s;
    return auth::EnsureAdminKey(instance_->streams(), instance_->sender(), kTestAdminKey,
                                topology::WallClockMs(), std::chrono::seconds(30));
  }
  void Stop() {
    if (instance_) instance_->Stop();
  }

  // Valid while the instance runs (a restart makes new ones).
  httplib::Client& client() { return instance_->client(); }
  topology::HttpServer& server() { return instance_->server(); }
  topology::KafkaStreams& streams() { return instance_->streams(); }
  const topology::StreamsMetadata& metadata() const { return instance_->metadata(); }
  const topology::CommandSender& commands() { return instance_->sender(); }
  const UsageInstanceOptions& options() const { return options_; }
  int port() const { return instance_->port(); }
  // Events appended by this instance's POST /v1/usage/events.
  int events_appended() const { return events_appended_.load(); }

  // Whether the task that owns `org` runs on this instance now.
  bool Owns(const std::string& org) {
    topology::KafkaStreams& streams = instance_->streams();
    const int sub = *streams.topology().SubTopologyOfSource(options_.usage.events_topic);
    const std::string task = streams.TaskForKey(sub, org).ToString();
    for (const auto& t : streams.RunningTasks())
      if (t == task) return true;
    return false;
  }

  nlohmann::json GetJson(const std::string& path, int* status = nullptr) {
    return instance_->GetJson(path, status);
  }

 private:
  void AddRoutes(InProcessInstance& i) {
    topology::RouteContext context{i.server(), i.streams(), i.router(), i.sender()};
    auth::AuthApplication().AddRoutes(context);
    usage::AddUsageRoutes(
        i.server(), i.streams(), i.router(), i.sender(),
        [this, &i](const std::string& topic, const std::string& key, const std::string& value,
                   int32_t partition) {
          ++events_appended_;
          return i.sender().Append(topic, key, value, partition);
        },
        options_.usage);
    teams::AddTeamsRoutes(i.server(), i.streams(), i.router(), i.sender(), options_.teams);
    // The application's own AddRoutes: its routes and its /metrics counters.
    if (options_.webhooks) webhooks::WebhooksApplication(*options_.webhooks).AddRoutes(context);
  }

  const TestBroker& broker_;
  UsageInstanceOptions options_;
  std::unique_ptr<topology::Topology> topology_;
  std::unique_ptr<InProcessInstance> instance_;  // stops with the instance
  std::atomic<int> events_appended_{0};
};

}  // namespace cm::testing
