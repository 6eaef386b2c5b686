#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "processors/cloudmatrix/command_line.h"
#include "processors/cloudmatrix/webhook_flags.h"

namespace cm::cloudmatrix {

// The flags of `run`, most of which `backfill` shares.
struct RunOptions {
  BrokerFlags cluster;
  bool embedded = false;
  std::string app_id = "cmstream";
  std::string instance_id;
  std::string state_dir = "./data";
  std::string http = "0.0.0.0:8080";
  std::string advertised_http;
  std::string cluster_secret;  // --cluster-secret: signs requests forwarded between instances
  // HTTP limits (topology::HttpServerOptions; README "HTTP limits").
  std::string http_max_body = "1MiB";
  std::string http_max_header_bytes = "32KiB";
  size_t http_max_headers = 100;
  std::string http_request_timeout = "10s";
  std::string http_idle_timeout = "5s";
  std::string http_linger = "2ms";
  size_t http_threads = 64;
  size_t http_max_connections = 4096;
  size_t http_max_queued = 1024;
  std::string http_rate_limit = "0";
  // TLS (README "TLS"): PEM certificate and key of this instance's HTTP server, and the CA
  // that signs the other instances' certificates when requests are forwarded to them.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  int threads = 1;
  std::string guarantee = "exactly_once";
  std::string rocksdb_memory = "256MiB";
  std::string cache_max_bytes = "64MiB";
  std::string commit_interval = "100ms";
  int partitions = 8;
  std::string topology = "cloudmatrix";
  std::string count_emit = "every-update";  // --topology counting only
  BridgeFlags bridge;
  std::string database_url;
  std::string database_schema = "public";
  std::string snapshot_interval = "30s";
  LimitFlags limits;
  // Invitation emails (README "Teams"): off without an SMTP URL; never in a backfill.
  std::string smtp_url;
  std::string smtp_from = "cmstream <no-reply@localhost>";
  std::string public_url;  // base of accept links; default http(s)://<advertised HTTP address>
  std::string smtp_max_age = "24h";
  WebhookFlags webhooks;
};

// A backfill is `run` over a bounded range, as another application id.
struct BackfillRequest {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  std::string from_text;
  std::string to_text;
  bool exit_when_done = true;
};

// The flags `run` and `backfill` share: --state-dir, --threads, --guarantee, --rocksdb-memory,
// --cache-max-bytes, --commit-interval, --topology, --count-emit and the input limits
// (--max-event-bytes, ...).
void AddEngineFlags(CLI::App* cmd, RunOptions& o);

// Runs one instance of the application until SIGINT/SIGTERM or a stream failure (or, with
// `backfill`, until its range is processed); returns the exit code.
int RunInstance(RunOptions& options, const BackfillRequest* backfill = nullptr);

}  // namespace cm::cloudmatrix
