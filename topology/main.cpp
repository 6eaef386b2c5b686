// The cmstream command line: `run` joins an application's consumer group, `broker` hosts the
// embedded development broker, `bridge` moves RabbitMQ messages into Kafka, `migrate` applies
// the Postgres migrations, `replay` resets a stopped application, `backfill` runs a second
// application id over a bounded range of the input. Flags have environment variables (CM_*) and
// may come from --config FILE (TOML or INI).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "bridges/postgres/migrator.h"
#include "bridges/postgres/snapshotter.h"
#include "bridges/rabbitmq/amqp_bridge.h"
#include "processors/counting/counting_routes.h"
#include "processors/counting/counting_topology.h"
#include "processors/usage/time_util.h"
#include "processors/usage/usage_routes.h"
#include "processors/usage/usage_snapshot_schema.h"
#include "processors/usage/usage_topology.h"
#include "topology/tools/application_reset.h"
#include "topology/tools/backfill.h"
#include "topology/query/command_sender.h"
#include "topology/kafka/embedded_broker.h"
#include "topology/query/http_server.h"
#include "topology/runtime/kafka_streams.h"
#include "topology/common/log.h"
#include "topology/tools/progress_reporter.h"
#include "topology/query/query_router.h"
#include "topology/query/streams_metadata.h"
#include "topology/kafka/topic_admin.h"
#include "topology/common/units.h"

namespace {

using cm::topology::HttpResponse;
using cm::topology::Log;
using cm::topology::LogLevel;

struct HostPort {
  std::string host;
  int port = 0;
};

cm::state::Result<HostPort> ParseHostPort(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos)
    return cm::state::Status::InvalidArgument("expected HOST:PORT, got '" + text + "'");
  HostPort hp{text.substr(0, colon), 0};
  try {
    hp.port = std::stoi(text.substr(colon + 1));
  } catch (const std::exception&) {
    return cm::state::Status::InvalidArgument("bad port in '" + text + "'");
  }
  return hp;
}

// SIGINT/SIGTERM are blocked in every thread and taken synchronously here, so shutdown runs
// in normal code rather than in a signal handler.
sigset_t BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// Waits for a termination signal, checking `healthy` every tick; false once it returns false.
template <typename Healthy>
bool WaitForSignal(const sigset_t& set, Healthy healthy, long tick_ms = 1000) {
  timespec tick{tick_ms / 1000, tick_ms % 1000 * 1'000'000};
  for (;;) {
    int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      Log(LogLevel::kInfo, "signal", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
      return true;
    }
    if (!healthy()) return false;
  }
}

// The RabbitMQ bridge's flags, the same for `run --amqp-url` and `bridge`.
struct BridgeFlags {
  std::string amqp_url;
  cm::rabbitmq::AmqpBridgeOptions options;
  std::string reconnect_backoff = "10s";
};

void AddBridgeFlags(CLI::App* cmd, BridgeFlags& f, const std::string& url_help) {
  cmd->add_option("--amqp-url", f.amqp_url, url_help)->envname("RABBITMQ_URL");
  cmd->add_option("--exchange", f.options.exchange, "RabbitMQ topic exchange to bind")
      ->envname("CM_AMQP_EXCHANGE")
      ->capture_default_str();
  cmd->add_option("--queue", f.options.queue, "durable RabbitMQ queue to consume (shareable)")
      ->envname("CM_AMQP_QUEUE")
      ->capture_default_str();
  cmd->add_option("--routing-key", f.options.routing_keys,
                  "binding of the queue to the exchange (repeatable; env: comma-separated)")
      ->envname("CM_AMQP_ROUTING_KEYS")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--prefetch", f.options.prefetch, "unacked messages in flight (basic.qos)")
      ->envname("CM_AMQP_PREFETCH")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  cmd->add_option("--bridge-topic", f.options.topic, "Kafka topic the events go to")
      ->envname("CM_BRIDGE_TOPIC")
      ->capture_default_str();
  cmd->add_option("--reconnect-backoff", f.reconnect_backoff,
                  "longest wait between reconnection attempts (starts at 100ms, doubling)")
      ->envname("CM_AMQP_RECONNECT_BACKOFF")
      ->capture_default_str();
}

// Fills in the options from the flags; false (after saying why) when one is invalid.
bool ResolveBridgeFlags(BridgeFlags& f, const std::string& bootstrap_servers,
                        const std::string& dlq_topic) {
  auto backoff = cm::topology::ParseDuration(f.reconnect_backoff);
  if (!backoff.ok()) {
    std::cerr << "--reconnect-backoff: " << backoff.status().message() << '\n';
    return false;
  }
  f.options.amqp_url = f.amqp_url;
  f.options.reconnect_backoff_max = *backoff;
  f.options.bootstrap_servers = bootstrap_servers;
  f.options.dlq_topic = dlq_topic;
  return true;
}

struct RunOptions {
  std::string brokers;
  bool embedded = false;
  std::string broker_admin;
  std::string app_id = "cmstream";
  std::string instance_id;
  std::string state_dir = "./data";
  std::string http = "0.0.0.0:8080";
  std::string advertised_http;
  int threads = 1;
  std::string guarantee = "exactly_once";
  std::string rocksdb_memory = "256MiB";
  std::string commit_interval = "100ms";
  int partitions = 8;
  std::string topology = "counting";
  BridgeFlags bridge;
  std::string database_url;
  std::string database_schema = "public";
  std::string snapshot_interval = "30s";
};

// The broker a command talks to, and how topics are created on it.
struct Cluster {
  std::unique_ptr<cm::topology::EmbeddedBroker> broker;  // --embedded only
  std::unique_ptr<cm::topology::TopicAdmin> admin;
  std::string bootstrap;
  bool embedded = false;  // librdkafka's mock: no transaction filtering, no lookups by time
};

cm::state::Result<Cluster> ConnectCluster(const std::string& brokers, bool embedded,
                                          const std::string& broker_admin) {
  Cluster c;
  if (embedded) {
    auto started = cm::topology::EmbeddedBroker::Start();
    if (!started.ok()) return started.status();
    c.broker = std::move(started).value();
    c.bootstrap = c.broker->bootstrap_servers();
    c.embedded = true;
    c.admin = cm::topology::NewEmbeddedTopicAdmin(*c.broker);
    Log(LogLevel::kInfo, "embedded_broker", {{"bootstrap", c.bootstrap}});
  } else if (!brokers.empty()) {
    c.bootstrap = brokers;
    c.embedded = !broker_admin.empty();
    c.admin = c.embedded ? cm::topology::NewRemoteEmbeddedTopicAdmin(brokers, broker_admin)
                         : cm::topology::NewKafkaTopicAdmin(brokers);
  } else {
    return cm::state::Status::InvalidArgument("give --brokers HOST:PORT,... or --embedded");
  }
  return c;
}

cm::state::Result<cm::topology::Topology> BuildTopology(const std::string& name,
                                                        const std::string& app_id) {
  cm::topology::TopologyBuilder builder;
  if (name == "counting") {
    cm::counting::AddCountingTopology(builder);
  } else if (name == "cloudmatrix") {
    if (auto s = cm::usage::AddUsageTopology(builder); !s.ok()) return s;
  } else {
    return cm::state::Status::InvalidArgument("unknown --topology '" + name +
                                              "' (counting, cloudmatrix)");
  }
  return builder.Build(app_id);
}

// A backfill is `run` over a bounded range, as another application id.
struct BackfillRequest {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  std::string from_text;
  std::string to_text;
  bool exit_when_done = true;
};

int Run(RunOptions& o, const BackfillRequest* backfill = nullptr) {
  sigset_t signals = BlockTerminationSignals();
  cm::topology::StreamsConfig config;
  config.application_id = o.app_id;
  config.state_dir = o.state_dir;
  config.threads = o.threads;
  config.default_partitions = o.partitions;
  if (o.guarantee == "exactly_once") {
    config.guarantee = cm::topology::ProcessingGuarantee::kExactlyOnce;
  } else if (o.guarantee == "at_least_once") {
    config.guarantee = cm::topology::ProcessingGuarantee::kAtLeastOnce;
  } else {
    std::cerr << "--guarantee must be exactly_once or at_least_once\n";
    return 2;
  }
  auto memory = cm::topology::ParseBytes(o.rocksdb_memory);
  auto interval = cm::topology::ParseDuration(o.commit_interval);
  // A backfill serves HTTP only when asked to.
  bool serve_http = backfill == nullptr || !o.http.empty();
  auto http = ParseHostPort(serve_http ? o.http : "127.0.0.1:0");
  for (const auto* s : {&memory.status(), &interval.status(), &http.status()}) {
    if (!s->ok()) {
      std::cerr << s->message() << '\n';
      return 2;
    }
  }
  auto snapshot_interval = cm::topology::ParseDuration(o.snapshot_interval);
  if (!snapshot_interval.ok()) {
    std::cerr << "--snapshot-interval: " << snapshot_interval.status().message() << '\n';
    return 2;
  }
  config.rocksdb_memory_bytes = *memory;
  config.commit_interval = *interval;
  config.instance_id = o.instance_id;
  if (config.instance_id.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    config.instance_id =
        std::string(host) + "-" + (backfill ? std::string("backfill") : std::to_string(http->port));
  }

  auto cluster = ConnectCluster(o.brokers, o.embedded, o.broker_admin);
  if (!cluster.ok()) {
    if (cluster.status().code() == cm::state::Status::Code::kInvalidArgument) {
      std::cerr << cluster.status().message() << '\n';
      return 2;
    }
    Log(LogLevel::kError, "broker_failed", {{"error", cluster.status().ToString()}});
    return 1;
  }
  config.bootstrap_servers = cluster->bootstrap;
  config.broker_filters_aborted = !cluster->embedded;
  cm::topology::TopicAdmin* admin = cluster->admin.get();
  auto topology = BuildTopology(o.topology, config.application_id);
  if (!topology.ok()) {
    Log(LogLevel::kError, "topology_invalid", {{"error", topology.status().ToString()}});
    return topology.status().code() == cm::state::Status::Code::kInvalidArgument ? 2 : 1;
  }
  std::optional<cm::topology::Backfill> job;
  if (backfill != nullptr) {
    cm::topology::ResetOptions reset;
    reset.bootstrap_servers = config.bootstrap_servers;
    reset.embedded_broker = cluster->embedded;
    reset.state_dir = config.state_dir;
    reset.from_ms = backfill->from_ms;
    reset.from_text = backfill->from_text;
    auto prepared = cm::topology::Backfill::Prepare(*topology, *admin, reset, backfill->to_ms);
    if (!prepared.ok()) {
      Log(LogLevel::kError, "backfill_refused", {{"error", prepared.status().ToString()}});
      std::cerr << "backfill: " << prepared.status().message() << '\n';
      return 1;
    }
    job.emplace(std::move(prepared).value());
    job->Configure(config);
  }

  // Postgres snapshots of the usage stores (DESIGN.md §8); the counting application has none.
  std::unique_ptr<cm::postgres::Snapshotter> snapshotter;
  if (!o.database_url.empty()) {
    if (o.topology == "cloudmatrix") {
      cm::postgres::SnapshotterOptions so;
      so.database_url = o.database_url;
      so.schema = o.database_schema;
      so.interval = *snapshot_interval;
      snapshotter = std::make_unique<cm::postgres::Snapshotter>(
          cm::usage::UsageSnapshotSchema(cm::usage::UsageOptions{}.catalog), so);
      config.snapshot_listener = snapshotter.get();
      snapshotter->Start();
      Log(LogLevel::kInfo, "snapshots_enabled",
          {{"schema", o.database_schema}, {"interval_ms", snapshot_interval->count()}});
    } else {
      Log(LogLevel::kWarn, "snapshots_disabled",
          {{"reason", "the " + o.topology + " topology has no snapshot tables"}});
    }
  }

  cm::topology::KafkaStreams streams(*topology, config, *admin);
  cm::topology::HttpServer server;
  server.Route("GET", "/health", [](const auto&) {
    return HttpResponse::Json(200, {{"status", "ok"}});
  });
  server.Route("GET", "/ready", [&](const auto&) {
    auto report = streams.ReadyReport();
    HttpResponse r = HttpResponse::Json(report["ready"].get<bool>() ? 200 : 503, report);
    if (r.status == 503) r.headers["Retry-After"] = "1";
    return r;
  });
  // Started once the streams have created the topics it writes to.
  std::unique_ptr<cm::rabbitmq::AmqpBridge> bridge;
  server.Route("GET", "/metrics", [&](const auto&) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = streams.RenderMetrics() + server.RenderMetrics() +
             (snapshotter ? snapshotter->RenderMetrics() : std::string());
    if (bridge) r.body += bridge->RenderMetrics();
    return r;
  });
  // Where other instances reach this one; a wildcard bind address is not routable.
  std::string advertised = o.advertised_http;
  if (advertised.empty()) {
    advertised = (http->host == "0.0.0.0" ? std::string("127.0.0.1") : http->host) + ":" +
                 std::to_string(http->port);
  }
  cm::topology::StreamsMetadata metadata(
      {.bootstrap_servers = config.bootstrap_servers,
       .topic = cm::topology::KafkaStreams::InstancesTopic(config.application_id),
       .instance_id = config.instance_id,
       .endpoint = advertised},
      [&streams] { return streams.RunningTasks(); });
  cm::topology::QueryRouter router(streams, metadata);
  server.Route("GET", "/v1/topology", [&](const auto&) {
    nlohmann::json j = streams.topology().Describe();
    nlohmann::json tasks = nlohmann::json::array();
    for (const auto& t : streams.Threads()) {
      for (const auto& task : t.tasks) {
        tasks.push_back({{"task", task.task},
                         {"thread", t.index},
                         {"state", task.running ? "running" : "restoring"}});
      }
    }
    nlohmann::json instances = nlohmann::json::array();
    for (const auto& i : metadata.Instances()) {
      instances.push_back(
          {{"instanceId", i.instance_id}, {"endpoint", i.endpoint}, {"tasks", i.tasks}});
    }
    j["instanceId"] = config.instance_id;
    j["tasks"] = tasks;
    j["instances"] = instances;
    return HttpResponse::Json(200, j);
  });
  if (backfill != nullptr) {
    server.RejectWrites("a backfill serves its figures read-only: write to the live application");
  }
  if (o.topology == "counting") cm::counting::AddCountingRoutes(server, streams, router);
  // Its producer needs no running streams; it is created before the routes that use it.
  std::unique_ptr<cm::topology::CommandSender> commands;
  if (o.topology == "cloudmatrix") {
    commands = std::make_unique<cm::topology::CommandSender>(streams, config.bootstrap_servers);
    cm::usage::AddUsageRoutes(server, streams, router, *commands);
  }
  // The engine starts first (topics, partition counts; restores go on in its threads), so
  // no request can reach a route before keys can be mapped to tasks.
  if (auto s = streams.Start(); !s.ok()) {
    Log(LogLevel::kError, "start_failed", {{"error", s.ToString()}});
    return 1;
  }
  if (auto s = metadata.Start(); !s.ok()) {
    Log(LogLevel::kError, "metadata_failed", {{"error", s.ToString()}});
    return 1;
  }
  if (serve_http) {
    if (auto s = server.Start(http->host, http->port); !s.ok()) {
      Log(LogLevel::kError, "http_failed", {{"error", s.ToString()}});
      return 1;
    }
    Log(LogLevel::kInfo, "http_listening", {{"host", http->host}, {"port", server.port()}});
  }
  // Never in a backfill: it would append to the live input.
  if (!o.bridge.amqp_url.empty() && backfill == nullptr) {
    if (!ResolveBridgeFlags(o.bridge, config.bootstrap_servers, config.dlq_topic)) return 2;
    bridge = std::make_unique<cm::rabbitmq::AmqpBridge>(o.bridge.options);
    if (auto s = bridge->Start(); !s.ok()) {
      Log(LogLevel::kError, "bridge_failed", {{"error", s.ToString()}});
      return 2;
    }
  }
  if (job) {
    cm::topology::ProgressReporter reporter("backfill", cm::topology::StderrIsTerminal());
    cm::topology::BackfillProgress progress;
    bool signalled = WaitForSignal(
        signals,
        [&] {
          progress = job->Progress(streams);
          reporter.Update(progress.done, progress.total);
          return streams.Failure().empty() && !progress.finished;
        },
        200);
    if (!signalled && progress.finished) {
      reporter.Finish(progress.done, progress.total);
      nlohmann::json partitions = nlohmann::json::array();
      for (const auto& [tp, stop] : job->stop()) {
        partitions.push_back({{"topic", tp.first},
                              {"partition", tp.second},
                              {"from", job->start().at(tp)},
                              {"to", stop}});
      }
      nlohmann::json summary = {{"applicationId", config.application_id},
                                {"from", backfill->from_text},
                                {"to", backfill->to_text},
                                {"records", progress.done},
                                {"recordsPerSecond", static_cast<uint64_t>(reporter.rate())},
                                {"partitions", partitions}};
      if (serve_http) summary["http"] = http->host + ":" + std::to_string(server.port());
      std::cout << summary.dump() << std::endl;
      if (backfill->exit_when_done) {
        metadata.Stop();
        streams.Stop();
        server.Stop();
        return 0;
      }
    } else if (signalled) {
      metadata.Stop();
      streams.Stop();
      server.Stop();
      Log(LogLevel::kWarn, "backfill_interrupted", {{"records", progress.done}});
      return 130;
    }
  }
  bool clean = WaitForSignal(signals, [&] { return streams.Failure().empty(); });
  if (!clean) Log(LogLevel::kError, "stream_failure", {{"error", streams.Failure()}});
  // The bridge first: it acks what Kafka acknowledged and hands the rest back to RabbitMQ.
  if (bridge) bridge->Stop();
  metadata.Stop();
  streams.Stop();
  if (snapshotter) snapshotter->Stop();  // after the streams: their last commits go out too
  server.Stop();
  Log(LogLevel::kInfo, "stopped", {{"clean", clean}});
  return clean ? 0 : 1;
}

struct BridgeOptions {
  std::string brokers;
  std::string broker_admin;
  int partitions = 8;
  std::string http;
  BridgeFlags bridge;
};

// `cmstream bridge`: the RabbitMQ bridge on its own, next to any number of instances.
int Bridge(BridgeOptions& o) {
  sigset_t signals = BlockTerminationSignals();
  if (o.brokers.empty()) {
    std::cerr << "give --brokers HOST:PORT,...\n";
    return 2;
  }
  if (o.bridge.amqp_url.empty()) o.bridge.amqp_url = o.bridge.options.amqp_url;
  const std::string dlq_topic = cm::topology::StreamsConfig{}.dlq_topic;
  if (!ResolveBridgeFlags(o.bridge, o.brokers, dlq_topic)) return 2;
  // The topics it writes to exist before the first record, with the partition count the
  // applications expect (a topic created on first use would get the broker's default).
  auto admin = o.broker_admin.empty()
                   ? cm::topology::NewKafkaTopicAdmin(o.brokers)
                   : cm::topology::NewRemoteEmbeddedTopicAdmin(o.brokers, o.broker_admin);
  if (auto s =
          admin->EnsureTopics({{o.bridge.options.topic, o.partitions}, {dlq_topic, o.partitions}});
      !s.ok()) {
    Log(LogLevel::kWarn, "topics_not_ensured", {{"error", s.ToString()}});
  }
  cm::rabbitmq::AmqpBridge bridge(o.bridge.options);
  cm::topology::HttpServer server;
  if (!o.http.empty()) {
    auto http = ParseHostPort(o.http);
    if (!http.ok()) {
      std::cerr << http.status().message() << '\n';
      return 2;
    }
    server.Route("GET", "/health", [](const auto&) {
      return HttpResponse::Json(200, {{"status", "ok"}});
    });
    server.Route("GET", "/metrics", [&](const auto&) {
      HttpResponse r;
      r.content_type = "text/plain; version=0.0.4";
      r.body = bridge.RenderMetrics();
      return r;
    });
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
  if (!o.http.empty()) server.Stop();
  return 0;
}

struct ReplayOptions {
  std::string brokers;
  std::string broker_admin;
  std::string app_id;
  std::string state_dir = "./data";
  std::string topology = "counting";
  bool from_beginning = false;
  std::string from;
  std::string to;
  bool dry_run = false;
};

int Replay(const ReplayOptions& o) {
  if (!o.to.empty()) {
    std::cerr << "replay: --to bounds a backfill, not a replay: a replayed application is the "
                 "live one and goes on with new input. Use `cmstream backfill --app-id NEW "
                 "--from ... --to ...` to compute figures for a bounded range.\n";
    return 2;
  }
  if (o.from_beginning == !o.from.empty()) {
    std::cerr << "replay: give exactly one of --from-beginning and --from ISO-8601\n";
    return 2;
  }
  cm::topology::ResetOptions reset;
  if (!o.from.empty()) {
    auto from = cm::usage::ParseTimestampString(o.from);
    if (!from.ok()) {
      std::cerr << "replay: --from: " << from.status().message() << '\n';
      return 2;
    }
    reset.from_ms = *from;
    reset.from_text = o.from;
  }
  if (o.brokers.empty()) {
    std::cerr << "replay: give --brokers (and --broker-admin for a `cmstream broker`)\n";
    return 2;
  }
  auto cluster = ConnectCluster(o.brokers, false, o.broker_admin);
  if (!cluster.ok()) {
    std::cerr << cluster.status().message() << '\n';
    return 2;
  }
  auto topology = BuildTopology(o.topology, o.app_id);
  if (!topology.ok()) {
    std::cerr << "replay: " << topology.status().message() << '\n';
    return 2;
  }
  reset.bootstrap_servers = cluster->bootstrap;
  reset.embedded_broker = cluster->embedded;
  reset.state_dir = o.state_dir;
  cm::topology::ApplicationReset resetter(*topology, reset, *cluster->admin);
  if (auto s = resetter.CheckStopped(); !s.ok()) {
    std::cerr << "replay refused: " << s.message() << '\n';
    return 1;
  }
  auto plan = resetter.Plan();
  if (!plan.ok()) {
    std::cerr << "replay: " << plan.status().ToString() << '\n';
    return 1;
  }
  std::cout << (o.dry_run ? "dry run, nothing is changed: " : "") << plan->Describe();
  if (o.dry_run) return 0;
  if (auto s = resetter.Apply(*plan); !s.ok()) {
    std::cerr << "replay failed: " << s.ToString() << '\n';
    return 1;
  }
  std::cout << "done: the next `cmstream run --app-id " << o.app_id
            << "` rebuilds every store from the new offsets\n";
  return 0;
}

int Migrate(const cm::postgres::MigratorOptions& o) {
  auto result = cm::postgres::Migrator::Run(o);
  if (!result.ok()) {
    Log(LogLevel::kError, "migrate_failed", {{"error", result.status().ToString()}});
    std::cerr << "cmstream migrate: " << result.status().message() << '\n';
    return 1;
  }
  for (const auto& name : result->applied) std::cout << "applied " << name << '\n';
  std::cout << "schema " << o.schema << ": " << result->applied.size() << " applied, "
            << result->already_applied.size() << " already applied\n";
  return 0;
}

struct BrokerOptions {
  std::string admin_http = "127.0.0.1:0";
  std::string info_file;
  std::vector<std::string> topics;
};

int Broker(const BrokerOptions& o) {
  sigset_t signals = BlockTerminationSignals();
  auto admin_hp = ParseHostPort(o.admin_http);
  if (!admin_hp.ok()) {
    std::cerr << admin_hp.status().message() << '\n';
    return 2;
  }
  auto started = cm::topology::EmbeddedBroker::Start();
  if (!started.ok()) {
    Log(LogLevel::kError, "broker_failed", {{"error", started.status().ToString()}});
    return 1;
  }
  auto broker = std::move(started).value();
  for (const auto& spec : o.topics) {
    auto colon = spec.rfind(':');
    std::string name = spec.substr(0, colon);
    int partitions = colon == std::string::npos ? 8 : std::stoi(spec.substr(colon + 1));
    if (auto s = broker->CreateTopic(name, partitions); !s.ok()) {
      Log(LogLevel::kError, "topic_failed", {{"error", s.ToString()}});
      return 1;
    }
  }
  // The admin endpoint stands in for the Admin API the embedded broker lacks.
  cm::topology::HttpServer server;
  server.Route("POST", "/topics", [&](const cm::topology::HttpRequest& req) {
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_array())
      return HttpResponse::Error(400, "validation_error", "expected [{name, partitions}]");
    for (const auto& t : body) {
      if (!t.contains("name") || !t["name"].is_string() || !t.contains("partitions") ||
          !t["partitions"].is_number_integer() || t["partitions"].get<int>() < 1) {
        return HttpResponse::Error(400, "validation_error",
                                   "each topic needs a name and partitions >= 1");
      }
      if (auto s = broker->CreateTopic(t["name"], t["partitions"]); !s.ok()) {
        return HttpResponse::FromStatus(s);
      }
    }
    return HttpResponse::Json(200, {{"created", body.size()}});
  });
  server.Route("GET", "/health", [](const auto&) {
    return HttpResponse::Json(200, {{"status", "ok"}});
  });
  if (auto s = server.Start(admin_hp->host, admin_hp->port); !s.ok()) {
    Log(LogLevel::kError, "http_failed", {{"error", s.ToString()}});
    return 1;
  }
  nlohmann::json info = {
      {"bootstrap", broker->bootstrap_servers()},
      {"admin", "http://" + admin_hp->host + ":" + std::to_string(server.port())}};
  if (!o.info_file.empty()) {
    std::string tmp = o.info_file + ".tmp";
    std::ofstream(tmp) << info.dump() << '\n';
    std::rename(tmp.c_str(), o.info_file.c_str());  // readers never see a half-written file
  }
  std::cout << info.dump() << std::endl;
  Log(LogLevel::kInfo, "broker_started", info);
  WaitForSignal(signals, [] { return true; });
  server.Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cmstream: a stream processor for CloudMatrix usage, teams and webhooks"};
  app.set_config("--config", "", "read flags from a TOML or INI file");
  app.require_subcommand(1);

  RunOptions run;
  CLI::App* run_cmd =
      app.add_subcommand("run", "run the application as one instance of its consumer group");
  run_cmd->add_option("--brokers", run.brokers, "Kafka bootstrap servers")->envname("CM_BROKERS");
  run_cmd->add_flag("--embedded", run.embedded, "host an embedded broker in this process")
      ->envname("CM_EMBEDDED");
  run_cmd
      ->add_option("--broker-admin", run.broker_admin,
                   "admin URL of a `cmstream broker` (it has no Admin API)")
      ->envname("CM_BROKER_ADMIN");
  run_cmd->add_option("--app-id", run.app_id, "application id: consumer group and topic prefix")
      ->envname("CM_APP_ID")
      ->capture_default_str();
  run_cmd
      ->add_option("--instance-id", run.instance_id,
                   "stable id of this instance (default host-port)")
      ->envname("CM_INSTANCE_ID");
  run_cmd->add_option("--state-dir", run.state_dir, "directory of local state")
      ->envname("CM_STATE_DIR")
      ->capture_default_str();
  run_cmd->add_option("--http", run.http, "HOST:PORT of the HTTP API")
      ->envname("CM_HTTP")
      ->capture_default_str();
  run_cmd
      ->add_option("--advertised-http", run.advertised_http,
                   "HOST:PORT other instances use to reach this one (default: the --http address, "
                   "127.0.0.1 for 0.0.0.0)")
      ->envname("CM_ADVERTISED_HTTP");
  run_cmd->add_option("--threads", run.threads, "stream threads")
      ->envname("CM_THREADS")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  run_cmd->add_option("--guarantee", run.guarantee, "exactly_once or at_least_once")
      ->envname("CM_GUARANTEE")
      ->capture_default_str();
  run_cmd
      ->add_option("--rocksdb-memory", run.rocksdb_memory,
                   "block cache + write buffers for all stores")
      ->envname("CM_ROCKSDB_MEMORY")
      ->capture_default_str();
  run_cmd->add_option("--commit-interval", run.commit_interval, "how often tasks commit")
      ->envname("CM_COMMIT_INTERVAL")
      ->capture_default_str();
  run_cmd->add_option("--partitions", run.partitions, "partitions of input topics cmstream creates")
      ->envname("CM_PARTITIONS")
      ->capture_default_str();
  run_cmd
      ->add_option("--topology", run.topology, "which application to run (counting, cloudmatrix)")
      ->envname("CM_TOPOLOGY")
      ->capture_default_str();
  AddBridgeFlags(run_cmd, run.bridge,
                 "run the RabbitMQ bridge in this instance, consuming from this AMQP URL");

  BridgeOptions bridge;
  CLI::App* bridge_cmd = app.add_subcommand(
      "bridge", "consume RabbitMQ and produce to Kafka (acked only once Kafka acknowledged)");
  bridge_cmd->add_option("--brokers", bridge.brokers, "Kafka bootstrap servers")
      ->envname("CM_BROKERS");
  bridge_cmd
      ->add_option("--broker-admin", bridge.broker_admin,
                   "admin URL of a `cmstream broker` (it has no Admin API)")
      ->envname("CM_BROKER_ADMIN");
  bridge_cmd
      ->add_option("--partitions", bridge.partitions,
                   "partitions of the target and DLQ topics if the bridge creates them")
      ->envname("CM_PARTITIONS")
      ->capture_default_str();
  bridge_cmd
      ->add_option("--http", bridge.http, "HOST:PORT serving /health and /metrics (default: none)")
      ->envname("CM_HTTP");
  AddBridgeFlags(bridge_cmd, bridge.bridge,
                 "RabbitMQ to consume from (default amqp://guest:guest@127.0.0.1:5672/)");

  ReplayOptions replay;
  CLI::App* replay_cmd = app.add_subcommand(
      "replay", "reset a stopped application to the beginning or a time (Kafka's reset tool)");
  replay_cmd->add_option("--brokers", replay.brokers, "Kafka bootstrap servers")
      ->envname("CM_BROKERS");
  replay_cmd
      ->add_option("--broker-admin", replay.broker_admin,
                   "admin URL of a `cmstream broker` (it has no Admin API)")
      ->envname("CM_BROKER_ADMIN");
  replay_cmd->add_option("--app-id", replay.app_id, "the application to reset")
      ->envname("CM_APP_ID")
      ->required();
  replay_cmd->add_option("--state-dir", replay.state_dir, "its local state, deleted")
      ->envname("CM_STATE_DIR")
      ->capture_default_str();
  replay_cmd->add_option("--topology", replay.topology, "the application's topology")
      ->envname("CM_TOPOLOGY")
      ->capture_default_str();
  replay_cmd->add_flag("--from-beginning", replay.from_beginning, "move inputs to their beginning");
  replay_cmd->add_option("--from", replay.from,
                         "move inputs to the first record at or after this ISO-8601 time");
  replay_cmd->add_option("--to", replay.to, "not for replay: see backfill");
  replay_cmd->add_flag("--dry-run", replay.dry_run, "print what would be done; change nothing");

  RunOptions backfill_run;
  backfill_run.http = "";             // no HTTP API unless asked for
  backfill_run.database_schema = "";  // never the live application's by default
  BackfillRequest backfill;
  CLI::App* backfill_cmd = app.add_subcommand(
      "backfill", "run a second application id over a bounded range of the input");
  backfill_cmd->add_option("--brokers", backfill_run.brokers, "Kafka bootstrap servers")
      ->envname("CM_BROKERS");
  backfill_cmd
      ->add_option("--broker-admin", backfill_run.broker_admin,
                   "admin URL of a `cmstream broker` (it has no Admin API)")
      ->envname("CM_BROKER_ADMIN");
  backfill_cmd
      ->add_option("--app-id", backfill_run.app_id,
                   "the backfill's own application id (not the live one's)")
      ->envname("CM_BACKFILL_APP_ID")
      ->required();
  backfill_cmd->add_option("--from", backfill.from_text, "range start, ISO-8601 (inclusive)")
      ->envname("CM_BACKFILL_FROM")
      ->required();
  backfill_cmd->add_option("--to", backfill.to_text, "range end, ISO-8601 (exclusive)")
      ->envname("CM_BACKFILL_TO")
      ->required();
  backfill_cmd
      ->add_option("--exit-when-done", backfill.exit_when_done,
                   "exit 0 when the range is processed; false keeps the HTTP API up")
      ->envname("CM_BACKFILL_EXIT_WHEN_DONE")
      ->capture_default_str();
  backfill_cmd->add_option("--state-dir", backfill_run.state_dir, "directory of local state")
      ->envname("CM_STATE_DIR")
      ->capture_default_str();
  backfill_cmd->add_option("--http", backfill_run.http, "HOST:PORT of a read-only HTTP API")
      ->envname("CM_BACKFILL_HTTP");
  backfill_cmd->add_option("--instance-id", backfill_run.instance_id, "default host-backfill")
      ->envname("CM_INSTANCE_ID");
  backfill_cmd->add_option("--threads", backfill_run.threads, "stream threads")
      ->envname("CM_THREADS")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  backfill_cmd->add_option("--guarantee", backfill_run.guarantee, "exactly_once or at_least_once")
      ->envname("CM_GUARANTEE")
      ->capture_default_str();
  backfill_cmd
      ->add_option("--rocksdb-memory", backfill_run.rocksdb_memory,
                   "block cache + write buffers for all stores")
      ->envname("CM_ROCKSDB_MEMORY")
      ->capture_default_str();
  backfill_cmd
      ->add_option("--commit-interval", backfill_run.commit_interval, "how often tasks commit")
      ->envname("CM_COMMIT_INTERVAL")
      ->capture_default_str();
  backfill_cmd->add_option("--topology", backfill_run.topology, "the live application's topology")
      ->envname("CM_TOPOLOGY")
      ->capture_default_str();
  // No environment variables here: a backfill must never inherit the live application's
  // snapshot target by accident.
  backfill_cmd->add_option("--database-url", backfill_run.database_url,
                           "Postgres URL: snapshot the backfill's stores there");
  backfill_cmd->add_option(
      "--database-schema", backfill_run.database_schema,
      "its own Postgres schema (required with --database-url; migrate it first)");
  backfill_cmd
      ->add_option("--snapshot-interval", backfill_run.snapshot_interval,
                   "how often changed rows are written to Postgres")
      ->capture_default_str();

  run_cmd
      ->add_option("--database-url", run.database_url,
                   "Postgres URL: snapshot the usage stores there (run `migrate` first)")
      ->envname("DATABASE_URL");
  run_cmd->add_option("--database-schema", run.database_schema, "Postgres schema of the snapshots")
      ->envname("CM_DATABASE_SCHEMA")
      ->capture_default_str();
  run_cmd
      ->add_option("--snapshot-interval", run.snapshot_interval,
                   "how often each task's changed rows are written to Postgres")
      ->envname("CM_SNAPSHOT_INTERVAL")
      ->capture_default_str();

  cm::postgres::MigratorOptions migrate;
  migrate.migrations_dir = CM_MIGRATIONS_DIR;
  CLI::App* migrate_cmd = app.add_subcommand(
      "migrate", "apply migrations/NNNN_name.sql to a Postgres schema, each once, in order");
  migrate_cmd->add_option("--database-url", migrate.database_url, "Postgres URL")
      ->envname("DATABASE_URL")
      ->required();
  migrate_cmd->add_option("--database-schema", migrate.schema, "schema (created if missing)")
      ->envname("CM_DATABASE_SCHEMA")
      ->capture_default_str();
  migrate_cmd->add_option("--migrations-dir", migrate.migrations_dir, "where the .sql files are")
      ->envname("CM_MIGRATIONS_DIR")
      ->capture_default_str();

  BrokerOptions broker;
  CLI::App* broker_cmd = app.add_subcommand(
      "broker", "host the embedded Kafka-protocol broker (development and tests)");
  broker_cmd->add_option("--admin-http", broker.admin_http, "HOST:PORT of the topic admin endpoint")
      ->envname("CM_BROKER_ADMIN_HTTP")
      ->capture_default_str();
  broker_cmd->add_option("--info-file", broker.info_file, "write {bootstrap, admin} JSON here");
  broker_cmd->add_option("--topic", broker.topics, "create NAME:PARTITIONS at start (repeatable)");

  CLI11_PARSE(app, argc, argv);
  if (*run_cmd) return Run(run);
  if (*broker_cmd) return Broker(broker);
  if (*bridge_cmd) return Bridge(bridge);
  if (*replay_cmd) return Replay(replay);
  if (*backfill_cmd) {
    if (backfill_run.brokers.empty()) {
      std::cerr << "backfill: give --brokers (and --broker-admin for a `cmstream broker`)\n";
      return 2;
    }
    auto from = cm::usage::ParseTimestampString(backfill.from_text);
    auto to = cm::usage::ParseTimestampString(backfill.to_text);
    if (!from.ok() || !to.ok() || *from >= *to) {
      std::cerr << "backfill: --from and --to must be ISO-8601 times with --from before --to\n";
      return 2;
    }
    if (!backfill_run.database_url.empty() &&
        (backfill_run.database_schema.empty() || backfill_run.database_schema == "public")) {
      std::cerr << "backfill: --database-url needs --database-schema naming the backfill's own "
                   "schema (not the live application's)\n";
      return 2;
    }
    backfill.from_ms = *from;
    backfill.to_ms = *to;
    return Run(backfill_run, &backfill);
  }
  if (*migrate_cmd) return Migrate(migrate);
  return 2;
}
