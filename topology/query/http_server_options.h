#pragma once

// What the HTTP server accepts and how long it waits: every limit is a `cmstream run` flag
// (README "HTTP limits"). A request over a limit is refused with a JSON 4xx before any
// handler runs; a client that is slow or idle is cut off, never waited on by a worker.
#include <chrono>
#include <cstddef>
#include <string>

#include "topology/query/request_head.h"

namespace cm::topology {

struct HttpServerOptions {
  RequestHeadLimits limits;
  // From a request's first byte until its head and body have arrived; then 408.
  std::chrono::milliseconds request_timeout{10'000};
  // A keep-alive connection with no request for this long is closed.
  std::chrono::milliseconds idle_timeout{5'000};
  // Writing a response, and reading the rest of a chunked body, give up after this.
  std::chrono::milliseconds io_timeout{10'000};
  size_t max_connections = 4096;
  // Worker threads of the read lane (GET) and as many again of the write lane; /health,
  // /ready and /metrics have two workers of their own. A command's worker mostly waits for
  // its commit (about one commit interval), so the write lane needs many.
  size_t threads = 64;
  // How long a worker that has answered waits for the connection's next request to serve it
  // itself, never as its lane's last idle worker; 0 hands every connection back to the
  // reactor. Context switches, not parsing, are most of a small request's cost.
  std::chrono::microseconds keep_alive_linger{2'000};
  // Complete requests waiting for a worker, per lane; beyond it 503 with Retry-After.
  size_t max_queued = 1024;
  // Token bucket per client address: requests per second and burst; 0 means no limit.
  // /health, /ready and /metrics are never limited.
  double rate_limit = 0;
  double rate_burst = 0;
  // PEM files: with both, the server speaks only TLS (1.2 and later); with neither, plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
  bool tls() const { return !tls_cert_file.empty() || !tls_key_file.empty(); }
};

}  // namespace cm::topology
