#pragma once

// Webhook delivery over HTTP(S): one POST per call to a URL a customer chose, so the client
// trusts nothing about it. It refuses addresses the AddressPolicy refuses (and connects to the
// address it checked, not to a second DNS answer), verifies TLS certificates, never follows
// redirects, bounds the whole exchange by one deadline and never reads more of a response body
// than it needs (it keeps none of it). Connections are kept alive and reused per checked address.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bridges/http/address_policy.h"
#include "state/status.h"

namespace cm::http {

struct DeliveryClientOptions {
  bool allow_http = false;  // http:// URLs too (--webhook-allow-http); https:// only otherwise
  AddressPolicy policy;     // which resolved addresses may be connected to
  size_t max_response_bytes = 64 * 1024;  // of the response body read before hanging up
  std::string ca_file;  // PEM CAs trusted besides the system's (tests' self-signed server)
  std::string user_agent = "cmstream-webhooks/1";
  // Keep-alive connections kept open between posts, over all endpoints (0: a connection per
  // post). One is reused only for the same scheme, host name, port and checked address.
  size_t max_idle_connections = 256;
  // An idle connection older than this is closed instead of reused: under the 5 s after which
  // common servers (Node, Apache, cpp-httplib) close theirs, so a post rarely meets a
  // connection the server is closing at that moment.
  std::chrono::milliseconds idle_timeout{4'000};
};

// Why a POST got no HTTP status (statuses, 3xx included, are the caller's to judge).
enum class DeliveryFailure {
  kNone,
  kTimeout,         // the deadline passed: connect, TLS, send or the whole response
  kConnection,      // refused, reset, unreachable, DNS failure, malformed response
  kTls,             // handshake or certificate verification failed
  kBlockedAddress,  // every address of the host is refused by the AddressPolicy
  kInvalidUrl,      // not an http(s) URL the client will send to, or an unsendable header
};

std::string_view DeliveryFailureName(DeliveryFailure failure);

struct DeliveryOutcome {
  DeliveryFailure failure = DeliveryFailure::kNone;
  int status = 0;  // the HTTP status when failure is kNone, else 0
  int64_t response_time_ms = 0;
  // Retry-After of a 429 or 503, delta-seconds or an HTTP date (then relative to now, at
  // least 0).
  std::optional<int64_t> retry_after_ms;
  std::string error;  // short and single-line when failure is not kNone; never the body
};

// An http(s) URL taken apart as the client sends to it.
struct ParsedUrl {
  bool https = true;
  std::string host;  // lower-case; an IPv6 literal without brackets
  int port = 443;
  std::string target;  // path and query, "/" at least; no fragment
};

// Posts may run concurrently from any number of threads: each takes an idle connection to its
// address (or opens one) for the call alone and gives it back when the exchange ended cleanly.
// One thread of the client's own enforces every call's deadline.
class DeliveryClient {
 public:
  explicit DeliveryClient(DeliveryClientOptions options);
  ~DeliveryClient();
  DeliveryClient(const DeliveryClient&) = delete;
  DeliveryClient& operator=(const DeliveryClient&) = delete;

  // POSTs `body` with `headers` (in order; Host, Content-Length, Connection and
  // Transfer-Encoding are the client's own and skipped, User-Agent defaults to the options')
  // to `url`, giving up after `timeout_ms` in all. A post whose request cannot be written to a
  // kept-alive connection (the server had closed it) is sent once more on a new connection.
  DeliveryOutcome Post(std::string_view url,
                       const std::vector<std::pair<std::string, std::string>>& headers,
                       const std::string& body, int64_t timeout_ms) const;

  // "scheme://host[:port][/path][?query][#fragment]" with scheme http or https; userinfo,
  // empty hosts, bad ports, IPv6 zones, blanks and control characters are refused.
  static state::Result<ParsedUrl> ParseUrl(std::string_view url);

  // Retry-After's value in ms from `now_ms` (Unix ms): delta-seconds or an HTTP date
  // (IMF-fixdate, RFC 850 or asctime); nullopt when it is neither.
  static std::optional<int64_t> ParseRetryAfter(std::string_view value, int64_t now_ms);

  const DeliveryClientOptions& options() const { return options_; }

  struct Counters {
    uint64_t connections_opened = 0;
    uint64_t connections_reused = 0;
    size_t idle_connections = 0;
  };
  Counters counters() const;

  class ConnectionPool;
  class DeadlineWatcher;

 private:
  DeliveryClientOptions options_;
  std::unique_ptr<ConnectionPool> pool_;
  std::unique_ptr<DeadlineWatcher> watcher_;
};

}  // namespace cm::http
