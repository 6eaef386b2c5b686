#include "processors/cloudmatrix/run_command.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "bridges/postgres/snapshotter.h"
#include "processors/auth/auth_application.h"
#include "processors/cloudmatrix/applications.h"
#include "processors/cloudmatrix/invitation_mail.h"
#include "processors/cloudmatrix/subcommand.h"
#include "processors/cloudmatrix/webhook_flags.h"
#include "processors/webhooks/webhook_sender.h"
#include "topology/common/log.h"
#include "topology/common/units.h"
#include "topology/common/wall_clock.h"
#include "topology/query/command_sender.h"
#include "topology/query/http_server.h"
#include "topology/query/query_router.h"
#include "topology/query/streams_metadata.h"
#include "topology/query/streams_routes.h"
#include "topology/runtime/kafka_streams.h"
#include "topology/tools/backfill.h"
#include "topology/tools/progress_reporter.h"

namespace cm::cloudmatrix {

using topology::Log;
using topology::LogLevel;

namespace {

// The HTTP server's limits the flags describe, or which flag is bad and why.
state::Result<topology::HttpServerOptions> ParseHttpOptions(const RunOptions& o) {
  topology::HttpServerOptions h;
  auto bytes = [](const std::string& flag, const std::string& text) -> state::Result<size_t> {
    auto n = topology::ParseBytes(text);
    if (!n.ok()) return state::Status::InvalidArgument(flag + ": " + n.status().message());
    return static_cast<size_t>(*n);
  };
  auto duration = [](const std::string& flag,
                     const std::string& text) -> state::Result<std::chrono::milliseconds> {
    auto d = topology::ParseDuration(text);
    if (!d.ok() || d->count() <= 0)
      return state::Status::InvalidArgument(flag + ": expected a positive duration like 10s");
    return *d;
  };
  auto body = bytes("--http-max-body", o.http_max_body);
  auto headers = bytes("--http-max-header-bytes", o.http_max_header_bytes);
  auto request = duration("--http-request-timeout", o.http_request_timeout);
  auto idle = duration("--http-idle-timeout", o.http_idle_timeout);
  auto linger = topology::ParseDuration(o.http_linger);
  if (!linger.ok() || linger->count() < 0)
    return state::Status::InvalidArgument("--http-linger: expected a duration like 2ms, or 0");
  for (const state::Status* s :
       {&body.status(), &headers.status(), &request.status(), &idle.status()}) {
    if (!s->ok()) return *s;
  }
  h.keep_alive_linger = *linger;
  h.limits.max_body_bytes = *body;
  h.limits.max_header_bytes = *headers;
  h.limits.max_header_count = o.http_max_headers;
  h.request_timeout = *request;
  h.idle_timeout = *idle;
  h.threads = o.http_threads;
  h.max_connections = o.http_max_connections;
  h.max_queued = o.http_max_queued;
  // RATE or RATE:BURST, requests per second per client address; 0 turns the limit off.
  double rate = 0, burst = 0;
  const std::string& r = o.http_rate_limit;
  size_t colon = r.find(':');
  char* end = nullptr;
  rate = std::strtod(r.c_str(), &end);
  bool ok = end != r.c_str() && (colon == std::string::npos ? *end == '\0' : *end == ':');
  if (ok && colon != std::string::npos) {
    const char* b = r.c_str() + colon + 1;
    burst = std::strtod(b, &end);
    ok = end != b && *end == '\0';
  }
  if (!ok || !(rate >= 0) || !(burst >= 0) || std::isinf(rate) || std::isinf(burst))
    return state::Status::InvalidArgument(
        "--http-rate-limit: expected RATE or RATE:BURST, e.g. "
        "100 or 100:200 (requests per second per address)");
  h.rate_limit = rate;
  h.rate_burst = burst;
  if (o.tls_cert.empty() != o.tls_key.empty())
    return state::Status::InvalidArgument(
        "--tls-cert and --tls-key go together: give both or neither");
  if (!o.tls_ca.empty() && o.tls_cert.empty())
    return state::Status::InvalidArgument(
        "--tls-ca verifies the other instances' HTTPS: it needs --tls-cert and --tls-key");
  h.tls_cert_file = o.tls_cert;
  h.tls_key_file = o.tls_key;
  if (h.threads == 0 || h.max_connections == 0 || h.max_queued == 0 ||
      h.limits.max_header_count == 0)
    return state::Status::InvalidArgument(
        "--http-threads, --http-max-connections, --http-max-queued and --http-max-headers "
        "must be positive");
  return h;
}

void AddHttpFlags(CLI::App* cmd, RunOptions& o) {
  cmd->add_option("--http-max-body", o.http_max_body,
                  "larger request bodies are refused with 413 before they are read")
      ->envname("CM_HTTP_MAX_BODY")
      ->capture_default_str();
  cmd->add_option("--http-max-header-bytes", o.http_max_header_bytes,
                  "request line and headers together; more is 431 (a longer request line, "
                  "over 8KiB, is 414)")
      ->envname("CM_HTTP_MAX_HEADER_BYTES")
      ->capture_default_str();
  cmd->add_option("--http-max-headers", o.http_max_headers, "more request headers is 431")
      ->envname("CM_HTTP_MAX_HEADERS")
      ->capture_default_str();
  cmd->add_option("--http-request-timeout", o.http_request_timeout,
                  "a request whose head and body have not all arrived by then is answered 408")
      ->envname("CM_HTTP_REQUEST_TIMEOUT")
      ->capture_default_str();
  cmd->add_option("--http-idle-timeout", o.http_idle_timeout,
                  "an idle keep-alive connection is closed after this")
      ->envname("CM_HTTP_IDLE_TIMEOUT")
      ->capture_default_str();
  cmd->add_option("--http-linger", o.http_linger,
                  "after an answer, a worker waits this long for the connection's next "
                  "request and serves it itself (fewer thread hand-offs); 0 turns it off")
      ->envname("CM_HTTP_LINGER")
      ->capture_default_str();
  cmd->add_option("--http-threads", o.http_threads,
                  "workers of the read lane, and as many of the write lane")
      ->envname("CM_HTTP_THREADS")
      ->capture_default_str();
  cmd->add_option("--http-max-connections", o.http_max_connections,
                  "more open connections are answered 503 and closed")
      ->envname("CM_HTTP_MAX_CONNECTIONS")
      ->capture_default_str();
  cmd->add_option("--http-max-queued", o.http_max_queued,
                  "complete requests waiting for a worker per lane; more is 503")
      ->envname("CM_HTTP_MAX_QUEUED")
      ->capture_default_str();
  cmd->add_option("--http-rate-limit", o.http_rate_limit,
                  "RATE[:BURST] requests per second per client address (429 with Retry-After "
                  "beyond it); 0 is no limit; /health, /ready and /metrics are never limited")
      ->envname("CM_HTTP_RATE_LIMIT")
      ->capture_default_str();
  cmd->add_option("--tls-cert", o.tls_cert,
                  "PEM certificate (chain): serve HTTPS only, with --tls-key")
      ->envname("CM_TLS_CERT");
  cmd->add_option("--tls-key", o.tls_key, "PEM private key of --tls-cert (unencrypted)")
      ->envname("CM_TLS_KEY");
  cmd->add_option("--tls-ca", o.tls_ca,
                  "PEM CA certificates that verify other instances when a request is forwarded "
                  "to them over HTTPS; without it they are not verified")
      ->envname("CM_TLS_CA");
}

// The stream configuration the flags describe; nullopt (after saying why) when one is bad.
std::optional<topology::StreamsConfig> ConfigFromFlags(const RunOptions& o, const HostPort& http,
                                                       bool backfill) {
  topology::StreamsConfig config;
  config.application_id = o.app_id;
  config.state_dir = o.state_dir;
  config.threads = o.threads;
  config.default_partitions = o.partitions;
  if (o.guarantee == "exactly_once") {
    config.guarantee = topology::ProcessingGuarantee::kExactlyOnce;
  } else if (o.guarantee == "at_least_once") {
    config.guarantee = topology::ProcessingGuarantee::kAtLeastOnce;
  } else {
    std::cerr << "--guarantee must be exactly_once or at_least_once\n";
    return std::nullopt;
  }
  auto memory = topology::ParseBytes(o.rocksdb_memory);
  if (!memory.ok()) {
    std::cerr << "--rocksdb-memory: " << memory.status().message() << '\n';
    return std::nullopt;
  }
  auto cache = topology::ParseBytes(o.cache_max_bytes);
  if (!cache.ok()) {
    std::cerr << "--cache-max-bytes: " << cache.status().message() << '\n';
    return std::nullopt;
  }
  auto interval = topology::ParseDuration(o.commit_interval);
  if (!interval.ok()) {
    std::cerr << "--commit-interval: " << interval.status().message() << '\n';
    return std::nullopt;
  }
  config.rocksdb_memory_bytes = *memory;
  config.cache_max_bytes = *cache;
  config.commit_interval = *interval;
  config.instance_id = o.instance_id;
  if (config.instance_id.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof host - 1);
    config.instance_id =
        std::string(host) + "-" + (backfill ? std::string("backfill") : std::to_string(http.port));
  }
  return config;
}

// Postgres snapshots of the applications' stores (DESIGN.md §8), when a database is given.
std::unique_ptr<postgres::Snapshotter> StartSnapshotter(const RunOptions& o,
                                                        const Applications& apps,
                                                        std::chrono::milliseconds interval) {
  if (o.database_url.empty()) return nullptr;
  auto schema = SnapshotSchemaOf(apps);
  if (schema.tables.empty()) {
    Log(LogLevel::kWarn, "snapshots_disabled",
        {{"reason", "the " + o.topology + " topology has no snapshot tables"}});
    return nullptr;
  }
  postgres::SnapshotterOptions so;
  so.database_url = o.database_url;
  so.schema = o.database_schema;
  so.interval = interval;
  auto snapshotter = std::make_unique<postgres::Snapshotter>(std::move(schema), so);
  snapshotter->Start();
  Log(LogLevel::kInfo, "snapshots_enabled",
      {{"schema", o.database_schema}, {"interval_ms", interval.count()}});
  return snapshotter;
}

// Waits for a backfill's range to be processed and prints its summary. nullopt: the instance
// goes on serving (--exit-when-done=false); otherwise the exit code.
std::optional<int> AwaitBackfill(const sigset_t& signals, topology::Backfill& job,
                                 const topology::KafkaStreams& streams,
                                 const BackfillRequest& request, const std::string& http) {
  topology::ProgressReporter reporter("backfill", topology::StderrIsTerminal());
  topology::BackfillProgress progress;
  bool signalled = WaitForSignal(
      signals,
      [&] {
        progress = job.Progress(streams);
        reporter.Update(progress.done, progress.total);
        return streams.Failure().empty() && !progress.finished;
      },
      200);
  if (signalled) {
    Log(LogLevel::kWarn, "backfill_interrupted", {{"records", progress.done}});
    return 130;
  }
  if (!progress.finished) return std::nullopt;  // a stream failure: the caller reports it
  reporter.Finish(progress.done, progress.total);
  nlohmann::json partitions = nlohmann::json::array();
  for (const auto& [tp, stop] : job.stop()) {
    partitions.push_back({{"topic", tp.first},
                          {"partition", tp.second},
                          {"from", job.start().at(tp)},
                          {"to", stop}});
  }
  nlohmann::json summary = {{"applicationId", streams.config().application_id},
                            {"from", request.from_text},
                            {"to", request.to_text},
                            {"records", progress.done},
                            {"recordsPerSecond", static_cast<uint64_t>(reporter.rate())},
                            {"partitions", partitions}};
  if (!http.empty()) summary["http"] = http;
  std::cout << summary.dump() << std::endl;
  if (request.exit_when_done) return 0;
  return std::nullopt;
}

// The teams application's invitation secret and emails the flags describe; nullopt (after
// saying why) when they are inconsistent. A backfill sends no email: it gets no sender.
std::optional<teams::TeamsOptions> TeamsFromFlags(const RunOptions& o, const HostPort& http,
                                                  bool tls, bool backfill) {
  teams::TeamsOptions t;
  t.invitation_secret = o.cluster_secret;
  if (o.smtp_url.empty() || backfill) return t;
  if (o.cluster_secret.empty()) {
    std::cerr << "--smtp-url needs --cluster-secret: invitation tokens are never stored, so the "
                 "mailer rebuilds each one from the secret\n";
    return std::nullopt;
  }
  auto max_age = topology::ParseDuration(o.smtp_max_age);
  if (!max_age.ok() || max_age->count() <= 0) {
    std::cerr << "--smtp-max-age: expected a positive duration like 24h\n";
    return std::nullopt;
  }
  if (o.smtp_from.find_first_of("\r\n") != std::string::npos ||
      smtp::SmtpClient::AddressOf(o.smtp_from).find('@') == std::string::npos) {
    std::cerr << "--smtp-from: expected an address, or Name <address>, on one line\n";
    return std::nullopt;
  }
  auto sender = StartSmtpMailSender(o.smtp_url);
  if (!sender.ok()) {
    std::cerr << sender.status().message() << '\n';
    return std::nullopt;
  }
  t.mail.sender = std::move(sender).value();
  t.mail.from = o.smtp_from;
  t.mail.max_age_ms = max_age->count();
  t.mail.public_url = o.public_url;
  if (t.mail.public_url.empty()) {
    std::string address = o.advertised_http;
    if (address.empty())
      address = (http.host == "0.0.0.0" ? std::string("127.0.0.1") : http.host) + ":" +
                std::to_string(http.port);
    t.mail.public_url = (tls ? "https://" : "http://") + address;
  }
  return t;
}

}  // namespace

int RunInstance(RunOptions& o, const BackfillRequest* backfill) {
  sigset_t signals = BlockTerminationSignals();
  // Each HTTP connection is a descriptor: --http-max-connections needs more than the usual
  // soft limit of 1024, so take the hard limit.
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  // A backfill serves HTTP only when asked to.
  bool serve_http = backfill == nullptr || !o.http.empty();
  auto http = ParseHostPort(serve_http ? o.http : "127.0.0.1:0");
  if (!http.ok()) {
    std::cerr << "--http: " << http.status().message() << '\n';
    return 2;
  }
  auto http_options = ParseHttpOptions(o);
  if (!http_options.ok()) {
    std::cerr << http_options.status().message() << '\n';
    return 2;
  }
  const bool embedded_broker = OnEmbeddedBroker(o.cluster, o.embedded);
  auto limits = ParseLimitFlags(o.limits, http_options->limits.max_body_bytes, embedded_broker);
  if (!limits.ok()) {
    std::cerr << limits.status().message() << '\n';
    return 2;
  }
  if (embedded_broker) {
    // A larger limit than the default is allowed, but a consumer that falls behind then loses
    // records sooner.
    const size_t record = limits->max_event_bytes + limits->max_id_bytes + 128;  // key, batch
    const size_t per_partition = topology::EmbeddedBroker::kPartitionBytes / record;
    if (per_partition < 1000)
      Log(LogLevel::kWarn, "embedded_broker_partition_bound",
          {{"max_event_bytes", limits->max_event_bytes}, {"events_per_partition", per_partition}});
  }
  counting::CountingTopologyOptions counting_options;
  if (o.count_emit == "per-commit") {
    counting_options.emit = counting::CountEmit::kLatestPerCommit;
  } else if (o.count_emit != "every-update") {
    std::cerr << "--count-emit must be every-update or per-commit, not '" << o.count_emit << "'\n";
    return 2;
  }
  if (counting_options.emit != counting::CountEmit::kEveryUpdate && o.topology != "counting") {
    std::cerr << "--count-emit applies to --topology counting only\n";
    return 2;
  }
  auto snapshot_interval = topology::ParseDuration(o.snapshot_interval);
  if (!snapshot_interval.ok()) {
    std::cerr << "--snapshot-interval: " << snapshot_interval.status().message() << '\n';
    return 2;
  }
  auto parsed = ConfigFromFlags(o, *http, backfill != nullptr);
  if (!parsed) return 2;
  auto teams_options = TeamsFromFlags(o, *http, http_options->tls(), backfill != nullptr);
  if (!teams_options) return 2;
  // Stopped after the streams (below), so that no task hands it a mail once it has stopped.
  std::shared_ptr<teams::MailSender> mail_sender = teams_options->mail.sender;
  topology::StreamsConfig config = std::move(*parsed);

  auto cluster = ConnectCluster(o.cluster, o.embedded);
  if (!cluster.ok()) {
    if (cluster.status().code() == state::Status::Code::kInvalidArgument) {
      std::cerr << cluster.status().message() << '\n';
      return 2;
    }
    Log(LogLevel::kError, "broker_failed", {{"error", cluster.status().ToString()}});
    return 1;
  }
  config.bootstrap_servers = cluster->bootstrap;
  config.broker_filters_aborted = !cluster->embedded;
  if (cluster->embedded)
    config.consumer_overrides.merge(topology::EmbeddedBroker::ConsumerOverrides());
  topology::TopicAdmin& admin = *cluster->admin;
  auto webhooks_options = WebhooksFromFlags(o.webhooks, config.bootstrap_servers,
                                            backfill == nullptr && o.topology == "cloudmatrix");
  if (!webhooks_options) return 2;
  // Stopped after the streams, like the mail sender: no task hands it an attempt afterwards.
  std::shared_ptr<webhooks::WebhookSender> webhook_sender = webhooks_options->sender;
  auto composed = Compose(o.topology, config.application_id,
                          {.usage_limits = *limits,
                           .teams = *teams_options,
                           .webhooks = std::move(*webhooks_options),
                           .counting = counting_options});
  if (!composed.ok()) {
    Log(LogLevel::kError, "topology_invalid", {{"error", composed.status().ToString()}});
    return composed.status().code() == state::Status::Code::kInvalidArgument ? 2 : 1;
  }
  const topology::Topology& app_topology = composed->topology;
  std::optional<topology::Backfill> job;
  if (backfill != nullptr) {
    topology::ResetOptions reset;
    reset.bootstrap_servers = config.bootstrap_servers;
    reset.embedded_broker = cluster->embedded;
    reset.state_dir = config.state_dir;
    reset.from_ms = backfill->from_ms;
    reset.from_text = backfill->from_text;
    auto prepared = topology::Backfill::Prepare(app_topology, admin, reset, backfill->to_ms);
    if (!prepared.ok()) {
      Log(LogLevel::kError, "backfill_refused", {{"error", prepared.status().ToString()}});
      std::cerr << "backfill: " << prepared.status().message() << '\n';
      return 1;
    }
    job.emplace(std::move(prepared).value());
    job->Configure(config);
  }
  auto snapshotter = StartSnapshotter(o, composed->apps, *snapshot_interval);
  if (snapshotter) config.snapshot_listener = snapshotter.get();
  // Never in a backfill: it would append to the live input. Started once the streams have
  // created the topics it writes to.
  std::unique_ptr<rabbitmq::AmqpBridge> bridge;
  if (!o.bridge.amqp_url.empty() && backfill == nullptr) {
    if (!ResolveBridgeFlags(o.bridge, config.bootstrap_servers, config.dlq_topic)) return 2;
    bridge = std::make_unique<rabbitmq::AmqpBridge>(o.bridge.options);
  }

  topology::KafkaStreams streams(app_topology, config, admin);
  // Where other instances reach this one; a wildcard bind address is not routable.
  std::string advertised = o.advertised_http;
  if (advertised.empty()) {
    advertised = (http->host == "0.0.0.0" ? std::string("127.0.0.1") : http->host) + ":" +
                 std::to_string(http->port);
  }
  topology::StreamsMetadata metadata(
      {.bootstrap_servers = config.bootstrap_servers,
       .topic = topology::KafkaStreams::InstancesTopic(config.application_id),
       .instance_id = config.instance_id,
       .endpoint = advertised},
      [&streams] { return streams.RunningTasks(); });
  std::optional<topology::ClusterSigner> signer;
  if (!o.cluster_secret.empty()) signer.emplace(o.cluster_secret);
  topology::QueryRouter router(
      streams, metadata,
      {.signer = signer ? &*signer : nullptr, .https = http_options->tls(), .ca_file = o.tls_ca});
  // Its producer needs no running streams; it is created before the routes that use it.
  topology::CommandSender commands(streams, config.bootstrap_servers);
  topology::HttpServer server(*http_options);
  if (signer) server.SetClusterSigner(&*signer);
  if (backfill != nullptr) {
    server.RejectWrites("a backfill serves its figures read-only: write to the live application");
  }
  topology::AddStreamsRoutes(server, streams, metadata);
  if (snapshotter) server.AddMetrics([&snapshotter] { return snapshotter->RenderMetrics(); });
  if (bridge) server.AddMetrics([&bridge] { return bridge->RenderMetrics(); });
  topology::RouteContext routes{server, streams, router, commands};
  for (const auto& app : composed->apps) app->AddRoutes(routes);

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
  // The first admin key: written once the api-keys store is restored, before any request.
  if (const char* admin_key = std::getenv("CM_ADMIN_KEY");
      admin_key != nullptr && *admin_key != '\0' && backfill == nullptr) {
    if (auto s = auth::EnsureAdminKey(streams, commands, admin_key, topology::WallClockMs(),
                                      std::chrono::seconds(60));
        !s.ok()) {
      Log(LogLevel::kError, "admin_key_failed", {{"error", s.ToString()}});
      return s.code() == state::Status::Code::kInvalidArgument ? 2 : 1;
    }
  }
  if (serve_http) {
    if (auto s = server.Start(http->host, http->port); !s.ok()) {
      Log(LogLevel::kError, "http_failed", {{"error", s.ToString()}});
      // A TLS certificate or key that cannot be used is a usage error, like a bad flag.
      return s.code() == state::Status::Code::kInvalidArgument ? 2 : 1;
    }
    Log(LogLevel::kInfo, "http_listening", {{"host", http->host}, {"port", server.port()}});
  }
  if (bridge) {
    if (auto s = bridge->Start(); !s.ok()) {
      Log(LogLevel::kError, "bridge_failed", {{"error", s.ToString()}});
      return 2;
    }
  }
  if (job) {
    std::string endpoint =
        serve_http ? http->host + ":" + std::to_string(server.port()) : std::string();
    if (auto code = AwaitBackfill(signals, *job, streams, *backfill, endpoint)) {
      metadata.Stop();
      streams.Stop();
      server.Stop();
      return *code;
    }
  }
  bool clean = WaitForSignal(signals, [&] { return streams.Failure().empty(); });
  if (!clean) Log(LogLevel::kError, "stream_failure", {{"error", streams.Failure()}});
  // The bridge first: it acks what Kafka acknowledged and hands the rest back to RabbitMQ.
  if (bridge) bridge->Stop();
  metadata.Stop();
  streams.Stop();
  if (mail_sender) mail_sender->Stop();        // lets the emails being sent finish
  if (webhook_sender) webhook_sender->Stop();  // lets the attempts in flight record outcomes
  if (snapshotter) snapshotter->Stop();        // after the streams: their last commits go out too
  server.Stop();
  Log(LogLevel::kInfo, "stopped", {{"clean", clean}});
  return clean ? 0 : 1;
}

void AddEngineFlags(CLI::App* cmd, RunOptions& o) {
  cmd->add_option("--state-dir", o.state_dir, "directory of local state")
      ->envname("CM_STATE_DIR")
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "stream threads")
      ->envname("CM_THREADS")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--guarantee", o.guarantee, "exactly_once or at_least_once")
      ->envname("CM_GUARANTEE")
      ->capture_default_str();
  cmd->add_option("--rocksdb-memory", o.rocksdb_memory,
                  "block cache + write buffers for all stores")
      ->envname("CM_ROCKSDB_MEMORY")
      ->capture_default_str();
  cmd->add_option("--cache-max-bytes", o.cache_max_bytes,
                  "each stream thread's record cache: committed store entries kept for reads, "
                  "plus the writes buffered for the next commit (0: none)")
      ->envname("CM_CACHE_MAX_BYTES")
      ->capture_default_str();
  cmd->add_option("--commit-interval", o.commit_interval, "how often tasks commit")
      ->envname("CM_COMMIT_INTERVAL")
      ->capture_default_str();
  cmd->add_option("--topology", o.topology,
                  "which applications to run: cloudmatrix (usage), or counting (the engine's test "
                  "application)")
      ->envname("CM_TOPOLOGY")
      ->capture_default_str();
  cmd->add_option("--count-emit", o.count_emit,
                  "with --topology counting: every-update emits (key, count) for every record; "
                  "per-commit emits each changed key's latest count once per commit, as Kafka "
                  "Streams' count() with its record cache")
      ->capture_default_str();
  AddLimitFlags(cmd, o.limits);
}

namespace {

class RunCommand final : public Subcommand {
 public:
  explicit RunCommand(CLI::App& app)
      : Subcommand(app.add_subcommand(
            "run", "run the application as one instance of its consumer group")) {
    CLI::App* cmd = cli_;
    AddBrokerFlags(cmd, o_.cluster);
    cmd->add_flag("--embedded", o_.embedded, "host an embedded broker in this process")
        ->envname("CM_EMBEDDED");
    cmd->add_option("--app-id", o_.app_id, "application id: consumer group and topic prefix")
        ->envname("CM_APP_ID")
        ->capture_default_str();
    cmd->add_option("--instance-id", o_.instance_id,
                    "stable id of this instance (default host-port)")
        ->envname("CM_INSTANCE_ID");
    cmd->add_option("--http", o_.http, "HOST:PORT of the HTTP API")
        ->envname("CM_HTTP")
        ->capture_default_str();
    cmd->add_option("--advertised-http", o_.advertised_http,
                    "HOST:PORT other instances use to reach this one (default: the --http "
                    "address, 127.0.0.1 for 0.0.0.0)")
        ->envname("CM_ADVERTISED_HTTP");
    AddHttpFlags(cmd, o_);
    cmd->add_option("--cluster-secret", o_.cluster_secret,
                    "shared by every instance: signs the requests one forwards to another (an "
                    "instance without it neither forwards nor accepts forwarded requests)")
        ->envname("CM_CLUSTER_SECRET");
    AddEngineFlags(cmd, o_);
    cmd->add_option("--partitions", o_.partitions, "partitions of input topics cmstream creates")
        ->envname("CM_PARTITIONS")
        ->capture_default_str();
    AddBridgeFlags(cmd, o_.bridge,
                   "run the RabbitMQ bridge in this instance, consuming from this AMQP URL");
    cmd->add_option("--database-url", o_.database_url,
                    "Postgres URL: snapshot the usage stores there (run `migrate` first)")
        ->envname("DATABASE_URL");
    cmd->add_option("--database-schema", o_.database_schema, "Postgres schema of the snapshots")
        ->envname("CM_DATABASE_SCHEMA")
        ->capture_default_str();
    cmd->add_option("--snapshot-interval", o_.snapshot_interval,
                    "how often each task's changed rows are written to Postgres")
        ->envname("CM_SNAPSHOT_INTERVAL")
        ->capture_default_str();
    cmd->add_option(
           "--smtp-url", o_.smtp_url,
           "email invitations through this SMTP server: smtp://[user:password@]host[:port] "
           "(STARTTLS when offered) or smtps://...; needs --cluster-secret")
        ->envname("CM_SMTP_URL");
    cmd->add_option("--smtp-from", o_.smtp_from, "From of invitation emails")
        ->envname("CM_SMTP_FROM")
        ->capture_default_str();
    cmd->add_option("--public-url", o_.public_url,
                    "base URL of the accept links in invitation emails (default: this instance's "
                    "advertised HTTP address)")
        ->envname("CM_PUBLIC_URL");
    cmd->add_option("--smtp-max-age", o_.smtp_max_age,
                    "an invitation email not sent this long after the invitation was made is "
                    "given up (state failed)")
        ->envname("CM_SMTP_MAX_AGE")
        ->capture_default_str();
    AddWebhookFlags(cmd, o_.webhooks);
  }

  int Execute() override { return RunInstance(o_); }

 private:
  RunOptions o_;
};

}  // namespace

std::unique_ptr<Subcommand> AddRunCommand(CLI::App& app) {
  return std::make_unique<RunCommand>(app);
}

}  // namespace cm::cloudmatrix
