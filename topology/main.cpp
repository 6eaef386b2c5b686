// The cmstream command line: `run` joins an application's consumer group, `broker` hosts the
// embedded development broker, `migrate` applies the Postgres migrations. Flags have environment
// variables (CM_*) and may come from --config FILE (TOML or INI).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "bridges/postgres/migrator.h"
#include "bridges/postgres/snapshotter.h"
#include "processors/counting/counting_routes.h"
#include "processors/counting/counting_topology.h"
#include "processors/usage/usage_routes.h"
#include "processors/usage/usage_snapshot_schema.h"
#include "processors/usage/usage_topology.h"
#include "topology/command_sender.h"
#include "topology/embedded_broker.h"
#include "topology/http_server.h"
#include "topology/kafka_streams.h"
#include "topology/log.h"
#include "topology/query_router.h"
#include "topology/streams_metadata.h"
#include "topology/topic_admin.h"
#include "topology/units.h"

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

// Waits for a termination signal, checking `healthy` every second; false if it went unhealthy.
template <typename Healthy>
bool WaitForSignal(const sigset_t& set, Healthy healthy) {
  timespec tick{1, 0};
  for (;;) {
    int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      Log(LogLevel::kInfo, "signal", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
      return true;
    }
    if (!healthy()) return false;
  }
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
  std::string database_url;
  std::string database_schema = "public";
  std::string snapshot_interval = "30s";
};

int Run(const RunOptions& o) {
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
  auto http = ParseHostPort(o.http);
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
    config.instance_id = std::string(host) + "-" + std::to_string(http->port);
  }

  std::unique_ptr<cm::topology::EmbeddedBroker> broker;
  std::unique_ptr<cm::topology::TopicAdmin> admin;
  if (o.embedded) {
    auto started = cm::topology::EmbeddedBroker::Start();
    if (!started.ok()) {
      Log(LogLevel::kError, "broker_failed", {{"error", started.status().ToString()}});
      return 1;
    }
    broker = std::move(started).value();
    config.bootstrap_servers = broker->bootstrap_servers();
    config.broker_filters_aborted = false;
    admin = cm::topology::NewEmbeddedTopicAdmin(*broker);
    Log(LogLevel::kInfo, "embedded_broker", {{"bootstrap", config.bootstrap_servers}});
  } else if (!o.brokers.empty()) {
    config.bootstrap_servers = o.brokers;
    if (!o.broker_admin.empty()) {
      config.broker_filters_aborted = false;
      admin = cm::topology::NewRemoteEmbeddedTopicAdmin(o.brokers, o.broker_admin);
    } else {
      admin = cm::topology::NewKafkaTopicAdmin(o.brokers);
    }
  } else {
    std::cerr << "give --brokers HOST:PORT,... or --embedded\n";
    return 2;
  }

  cm::topology::TopologyBuilder builder;
  if (o.topology == "counting") {
    cm::counting::AddCountingTopology(builder);
  } else if (o.topology == "cloudmatrix") {
    if (auto s = cm::usage::AddUsageTopology(builder); !s.ok()) {
      Log(LogLevel::kError, "topology_invalid", {{"error", s.ToString()}});
      return 1;
    }
  } else {
    std::cerr << "unknown --topology '" << o.topology << "' (counting, cloudmatrix)\n";
    return 2;
  }
  auto topology = builder.Build(config.application_id);
  if (!topology.ok()) {
    Log(LogLevel::kError, "topology_invalid", {{"error", topology.status().ToString()}});
    return 1;
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
  server.Route("GET", "/metrics", [&](const auto&) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = streams.RenderMetrics() + server.RenderMetrics() +
             (snapshotter ? snapshotter->RenderMetrics() : std::string());
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
  if (auto s = server.Start(http->host, http->port); !s.ok()) {
    Log(LogLevel::kError, "http_failed", {{"error", s.ToString()}});
    return 1;
  }
  Log(LogLevel::kInfo, "http_listening", {{"host", http->host}, {"port", server.port()}});
  bool clean = WaitForSignal(signals, [&] { return streams.Failure().empty(); });
  if (!clean) Log(LogLevel::kError, "stream_failure", {{"error", streams.Failure()}});
  metadata.Stop();
  streams.Stop();
  if (snapshotter) snapshotter->Stop();  // after the streams: their last commits go out too
  server.Stop();
  Log(LogLevel::kInfo, "stopped", {{"clean", clean}});
  return clean ? 0 : 1;
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
  if (*migrate_cmd) return Migrate(migrate);
  return 2;
}
