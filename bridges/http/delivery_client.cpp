#include "bridges/http/delivery_client.h"

#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "bridges/http/ascii.h"

namespace cm::http {

namespace {

using Clock = std::chrono::steady_clock;

int64_t MillisSince(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

// OpenSSL writes to the socket with write(2), so a peer resetting the connection while the
// request is sent would raise SIGPIPE and end the process. Blocked on this thread for the call,
// and a SIGPIPE the call raised is consumed before the mask is restored (as libpq does).
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &previous_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeBlock() {
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{};
        sigtimedwait(&pipe_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_;
  sigset_t previous_;
  bool was_pending_ = false;
};

bool IsTokenChar(unsigned char c) {
  return std::isalnum(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// Headers that describe the connection and the framing: the client sets them itself, a
// caller's copy could only contradict them.
bool IsClientManaged(std::string_view name) {
  for (std::string_view managed : {"Host", "Content-Length", "Connection", "Transfer-Encoding"})
    if (EqualsIgnoreCase(name, managed)) return true;
  return false;
}

std::string HostHeader(const ParsedUrl& url) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  if (url.port != (url.https ? 443 : 80)) host += ":" + std::to_string(url.port);
  return host;
}

struct Attempt {
  DeliveryOutcome outcome;
  bool not_connected = false;  // nothing was sent: the next address may be tried
  bool stale = false;          // a reused connection was found closed while writing
};

DeliveryOutcome Failure(DeliveryFailure failure, std::string error) {
  DeliveryOutcome outcome;
  outcome.failure = failure;
  outcome.error = std::move(error);
  return outcome;
}

// What an httplib error means for the caller. Every case is listed so that a new httplib
// version's errors fail the build here instead of landing in a default.
DeliveryOutcome Classify(httplib::Error error, const httplib::SSLClient* tls,
                         const std::string& address) {
  switch (error) {
    case httplib::Error::Success:
    case httplib::Error::Unknown:
      return Failure(DeliveryFailure::kConnection, "the request failed for an unknown reason");
    case httplib::Error::Connection:
      return Failure(DeliveryFailure::kConnection, "cannot connect to " + address);
    case httplib::Error::BindIPAddress:
      return Failure(DeliveryFailure::kConnection, "cannot bind the local address");
    case httplib::Error::Read:
      return Failure(DeliveryFailure::kConnection,
                     "the connection was closed or reset before a complete response");
    case httplib::Error::Write:
      return Failure(DeliveryFailure::kConnection, "the connection failed while sending");
    case httplib::Error::ExceedRedirectCount:  // redirects are not followed
      return Failure(DeliveryFailure::kConnection, "too many redirects");
    case httplib::Error::Canceled:
      return Failure(DeliveryFailure::kConnection, "the response was abandoned");
    case httplib::Error::SSLConnection:
      return Failure(DeliveryFailure::kTls, "the TLS handshake failed");
    case httplib::Error::SSLLoadingCerts:
      return Failure(DeliveryFailure::kTls, "cannot load the trusted CA certificates");
    case httplib::Error::SSLServerVerification: {
      long verify = tls ? tls->get_openssl_verify_result() : X509_V_OK;
      if (verify != X509_V_OK)
        return Failure(DeliveryFailure::kTls, std::string("certificate verification failed: ") +
                                                  X509_verify_cert_error_string(verify));
      return Failure(DeliveryFailure::kTls, "the certificate does not match the host");
    }
    case httplib::Error::UnsupportedMultipartBoundaryChars:
      return Failure(DeliveryFailure::kConnection, "unsupported multipart boundary");
    case httplib::Error::Compression:
      return Failure(DeliveryFailure::kConnection, "cannot decode the response");
    case httplib::Error::ConnectionTimeout:
      return Failure(DeliveryFailure::kTimeout, "connecting to " + address + " timed out");
  }
  return Failure(DeliveryFailure::kConnection, "the request failed");
}

std::string JoinAddress(const IpAddress& address, int port) {
  return (address.is_v4() ? address.ToString() : "[" + address.ToString() + "]") + ":" +
         std::to_string(port);
}

}  // namespace

// Enforces every call's one deadline on whatever httplib is doing when it passes (connecting,
// the TLS handshake, writing, or reading headers a byte at a time): it shuts the call's socket
// down, so the blocked call returns at once. httplib's own timeouts apply per read or write,
// so a server dripping bytes would otherwise hold the sender indefinitely. One thread serves
// all calls. Each socket is watched through a duplicate descriptor of our own, so shutting it
// down can never hit a descriptor number httplib closed and the process reused meanwhile.
class DeliveryClient::DeadlineWatcher {
 public:
  DeadlineWatcher() : thread_([this] { Run(); }) {}
  ~DeadlineWatcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
    thread_.join();
    for (auto& [id, watch] : watches_)
      if (watch.fd >= 0) ::close(watch.fd);
  }
  DeadlineWatcher(const DeadlineWatcher&) = delete;
  DeadlineWatcher& operator=(const DeadlineWatcher&) = delete;

  uint64_t Arm(Clock::time_point deadline) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t id = ++next_id_;
    watches_[id].deadline = deadline;
    const bool earliest = by_deadline_.empty() || deadline < by_deadline_.begin()->first;
    by_deadline_.emplace(deadline, id);
    if (earliest) cv_.notify_all();
    return id;
  }

  // The socket the call `id` is using now (a new one replaces the last).
  void Watch(uint64_t id, int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& watch = watches_[id];
    if (watch.fd >= 0) ::close(watch.fd);
    watch.fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (watch.fired && watch.fd >= 0) ::shutdown(watch.fd, SHUT_RDWR);
  }

  // Stops watching the call; whether its deadline cut the connection.
  bool Disarm(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto at = watches_.find(id);
    if (at == watches_.end()) return false;
    const bool fired = at->second.fired;
    if (at->second.fd >= 0) ::close(at->second.fd);
    auto [first, last] = by_deadline_.equal_range(at->second.deadline);
    for (auto it = first; it != last; ++it) {
      if (it->second == id) {
        by_deadline_.erase(it);
        break;
      }
    }
    watches_.erase(at);
    return fired;
  }

 private:
  struct Entry {
    Clock::time_point deadline;
    int fd = -1;
    bool fired = false;
  };

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopped_) {
      if (by_deadline_.empty()) {
        cv_.wait(lock);
        continue;
      }
      const Clock::time_point next = by_deadline_.begin()->first;
      if (Clock::now() < next) {
        cv_.wait_until(lock, next);
        continue;
      }
      const uint64_t id = by_deadline_.begin()->second;
      by_deadline_.erase(by_deadline_.begin());
      Entry& watch = watches_[id];
      watch.fired = true;
      if (watch.fd >= 0) ::shutdown(watch.fd, SHUT_RDWR);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_id_ = 0;
  std::map<uint64_t, Entry> watches_;
  std::multimap<Clock::time_point, uint64_t> by_deadline_;
  bool stopped_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

// Idle keep-alive connections, newest last per key. A key names everything a connection is
// bound to: scheme, the URL's host (Host, SNI, certificate), port and the checked address, so
// a connection is never reused for an address the policy did not allow for this call.
class DeliveryClient::ConnectionPool {
 public:
  struct Connection {
    std::unique_ptr<httplib::ClientImpl> client;
    httplib::SSLClient* tls = nullptr;  // the same object when https
    Clock::time_point idle_since;
  };

  ConnectionPool(size_t max_idle, Clock::duration idle_timeout)
      : max_idle_(max_idle), idle_timeout_(idle_timeout) {}

  std::optional<Connection> Take(const std::string& key) {
    std::vector<Connection> expired;  // closed outside the lock
    std::optional<Connection> found;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto at = idle_.find(key);
      const Clock::time_point now = Clock::now();
      while (at != idle_.end() && !at->second.empty()) {
        Connection c = std::move(at->second.back());
        at->second.pop_back();
        --count_;
        if (now - c.idle_since < idle_timeout_) {
          found = std::move(c);
          break;
        }
        expired.push_back(std::move(c));
      }
      if (at != idle_.end() && at->second.empty()) idle_.erase(at);
    }
    return found;
  }

  void Put(const std::string& key, Connection connection) {
    if (max_idle_ == 0 || !connection.client->is_socket_open()) return;
    std::vector<Connection> closed;  // closed outside the lock
    connection.idle_since = Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    idle_[key].push_back(std::move(connection));
    ++count_;
    while (count_ > max_idle_) {
      // The key whose oldest idle connection is the oldest of all gives it up.
      auto oldest = idle_.end();
      for (auto it = idle_.begin(); it != idle_.end(); ++it) {
        if (oldest == idle_.end() ||
            it->second.front().idle_since < oldest->second.front().idle_since)
          oldest = it;
      }
      closed.push_back(std::move(oldest->second.front()));
      oldest->second.erase(oldest->second.begin());
      if (oldest->second.empty()) idle_.erase(oldest);
      --count_;
    }
  }

  // One post went out on a socket made for it (`opened`) or on a kept-alive one.
  void Count(bool opened) {
    std::lock_guard<std::mutex> lock(mu_);
    ++(opened ? opened_ : reused_);
  }

  Counters counters() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {
        .connections_opened = opened_, .connections_reused = reused_, .idle_connections = count_};
  }

 private:
  const size_t max_idle_;
  const Clock::duration idle_timeout_;
  mutable std::mutex mu_;
  std::map<std::string, std::vector<Connection>> idle_;
  size_t count_ = 0;
  uint64_t opened_ = 0;
  uint64_t reused_ = 0;
};

namespace {

std::optional<DeliveryClient::ConnectionPool::Connection> NewConnection(
    const DeliveryClientOptions& options, const ParsedUrl& url, const IpAddress& address,
    DeliveryOutcome& failure) {
  DeliveryClient::ConnectionPool::Connection c;
  if (url.https) {
    auto ssl = std::make_unique<httplib::SSLClient>(url.host, url.port);
    if (!ssl->is_valid()) {
      failure = Failure(DeliveryFailure::kTls, "cannot create a TLS context");
      return std::nullopt;
    }
    ssl->enable_server_certificate_verification(true);
    // Loaded into the context's store before httplib adds the system's CAs to it (it does when
    // no CA path of its own is set), so both are trusted.
    if (!options.ca_file.empty() &&
        SSL_CTX_load_verify_locations(ssl->ssl_context(), options.ca_file.c_str(), nullptr) != 1) {
      failure = Failure(DeliveryFailure::kTls, "cannot load the CA file");
      return std::nullopt;
    }
    c.tls = ssl.get();
    c.client = std::move(ssl);
  } else {
    c.client = std::make_unique<httplib::ClientImpl>(url.host, url.port);
  }
  // Connect to the address that was checked; Host, SNI and certificate verification still use
  // the URL's host. Resolving again here would let a second DNS answer point elsewhere.
  c.client->set_hostname_addr_map({{url.host, address.ToString()}});
  c.client->set_follow_location(false);
  c.client->set_keep_alive(options.max_idle_connections > 0);
  c.client->set_tcp_nodelay(true);
  c.client->set_decompress(false);  // the body is never used: no reason to inflate it
  c.client->set_url_encode(false);  // ParseUrl already produced a valid request target
  return c;
}

// One POST to `address`, which the policy allowed, on an idle connection to it or a new one.
Attempt PostTo(const DeliveryClientOptions& options, DeliveryClient::ConnectionPool& pool,
               DeliveryClient::DeadlineWatcher& watcher, const ParsedUrl& url,
               const IpAddress& address, const httplib::Headers& headers, const std::string& body,
               Clock::time_point deadline, int64_t timeout_ms, bool fresh = false) {
  Attempt attempt;
  std::string where = JoinAddress(address, url.port);
  const std::string key = std::string(url.https ? "https " : "http ") + url.host + " " + where;
  std::optional<DeliveryClient::ConnectionPool::Connection> connection;
  if (!fresh) connection = pool.Take(key);
  const bool reused = connection.has_value();
  if (!connection) {
    connection = NewConnection(options, url, address, attempt.outcome);
    if (!connection) return attempt;
  }
  httplib::ClientImpl& client = *connection->client;

  const uint64_t watch = watcher.Arm(deadline);
  if (client.is_socket_open()) watcher.Watch(watch, client.socket());
  bool connected = false;  // a new socket was made for this post (httplib found none alive)
  client.set_socket_options([&watcher, watch, &connected](int fd) {
    connected = true;
    watcher.Watch(watch, fd);
  });
  auto remaining = std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
  client.set_connection_timeout(std::chrono::milliseconds(remaining));
  client.set_read_timeout(std::chrono::milliseconds(timeout_ms));
  client.set_write_timeout(std::chrono::milliseconds(timeout_ms));

  std::optional<int> status;
  std::optional<std::string> retry_after;
  size_t received = 0;
  bool capped = false;
  bool late = false;
  httplib::Request request;
  request.method = "POST";
  request.path = url.target;
  request.headers = headers;
  request.headers.emplace("Host", HostHeader(url));
  request.body = body;
  request.response_handler = [&](const httplib::Response& response) {
    status = response.status;
    if (response.has_header("Retry-After")) retry_after = response.get_header_value("Retry-After");
    return true;
  };
  // The status is what matters: the body is read only to end the exchange cleanly, up to the
  // cap and the deadline, and dropped.
  request.content_receiver = [&](const char*, size_t length, uint64_t, uint64_t) {
    received += length;
    if (received > options.max_response_bytes) {
      capped = true;
      return false;
    }
    if (Clock::now() >= deadline) {
      late = true;
      return false;
    }
    return true;
  };

  httplib::Response response;
  httplib::Error error = httplib::Error::Success;
  bool sent;
  {
    SigpipeBlock no_sigpipe;
    sent = client.send(request, response, error);
  }
  bool fired = watcher.Disarm(watch);
  client.set_socket_options(nullptr);
  if (connected || reused) pool.Count(connected);

  if (sent || (capped && status)) {
    attempt.outcome.status = sent ? response.status : *status;
    if (attempt.outcome.status == 429 || attempt.outcome.status == 503) {
      if (!retry_after && sent && response.has_header("Retry-After"))
        retry_after = response.get_header_value("Retry-After");
      if (retry_after) {
        int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        attempt.outcome.retry_after_ms = DeliveryClient::ParseRetryAfter(*retry_after, now_ms);
      }
    }
    // httplib closed the socket when the exchange did not end cleanly or the server said
    // Connection: close; the pool keeps only open ones.
    if (sent && !fired) pool.Put(key, std::move(*connection));
    return attempt;
  }
  if (fired || late) {
    std::string what =
        status ? "the response body (status " + std::to_string(*status) + ")" : "the response";
    attempt.outcome = Failure(DeliveryFailure::kTimeout, what + " did not complete within " +
                                                             std::to_string(timeout_ms) + " ms");
    return attempt;
  }
  attempt.outcome = Classify(error, connection->tls, where);
  attempt.not_connected = error == httplib::Error::Connection;
  // A kept-alive connection the server had closed: writing the request failed, so nothing was
  // processed (Go's net/http retries a POST in the same case only). A connection closed after
  // the request went out is the endpoint's failure, as on a new connection: it may have been
  // processed, and the attempt records it.
  attempt.stale = reused && !connected && !status && error == httplib::Error::Write;
  return attempt;
}

// The host's addresses in getaddrinfo's order (RFC 6724), without duplicates.
state::Result<std::vector<IpAddress>> Resolve(const std::string& host) {
  if (std::optional<IpAddress> literal = IpAddress::Parse(host))
    return std::vector<IpAddress>{*literal};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0)
    return state::Status::Unavailable("cannot resolve " + host + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, &freeaddrinfo);
  std::vector<IpAddress> addresses;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    std::optional<IpAddress> address = IpAddress::FromSockaddr(ai->ai_addr);
    if (address && std::find(addresses.begin(), addresses.end(), *address) == addresses.end())
      addresses.push_back(*address);
  }
  if (addresses.empty()) return state::Status::Unavailable("no address for " + host);
  return addresses;
}

}  // namespace

std::string_view DeliveryFailureName(DeliveryFailure failure) {
  switch (failure) {
    case DeliveryFailure::kNone:
      return "none";
    case DeliveryFailure::kTimeout:
      return "timeout";
    case DeliveryFailure::kConnection:
      return "connection";
    case DeliveryFailure::kTls:
      return "tls";
    case DeliveryFailure::kBlockedAddress:
      return "blocked_address";
    case DeliveryFailure::kInvalidUrl:
      return "invalid_url";
  }
  return "unknown";
}

DeliveryClient::DeliveryClient(DeliveryClientOptions options)
    : options_(std::move(options)),
      pool_(std::make_unique<ConnectionPool>(options_.max_idle_connections, options_.idle_timeout)),
      watcher_(std::make_unique<DeadlineWatcher>()) {}

// The pool closes its connections before the watcher stops.
DeliveryClient::~DeliveryClient() { pool_.reset(); }

DeliveryClient::Counters DeliveryClient::counters() const { return pool_->counters(); }

DeliveryOutcome DeliveryClient::Post(
    std::string_view url, const std::vector<std::pair<std::string, std::string>>& headers,
    const std::string& body, int64_t timeout_ms) const {
  Clock::time_point start = Clock::now();
  timeout_ms = std::max<int64_t>(1, timeout_ms);
  Clock::time_point deadline = start + std::chrono::milliseconds(timeout_ms);
  auto finish = [&](DeliveryOutcome outcome) {
    outcome.response_time_ms = MillisSince(start);
    return outcome;
  };

  state::Result<ParsedUrl> parsed = ParseUrl(url);
  if (!parsed.ok()) return finish(Failure(DeliveryFailure::kInvalidUrl, parsed.status().message()));
  if (!parsed->https && !options_.allow_http)
    return finish(Failure(DeliveryFailure::kInvalidUrl, "only https URLs are allowed"));

  httplib::Headers wire;
  bool has_user_agent = false;
  for (const auto& [name, value] : headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return IsTokenChar(static_cast<unsigned char>(c));
        }))
      return finish(Failure(DeliveryFailure::kInvalidUrl, "a header name is not a token"));
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
      return finish(Failure(DeliveryFailure::kInvalidUrl,
                            "the value of header " + name + " has a line break"));
    if (IsClientManaged(name)) continue;
    has_user_agent = has_user_agent || EqualsIgnoreCase(name, "User-Agent");
    wire.emplace(name, value);
  }
  if (!has_user_agent) wire.emplace("User-Agent", options_.user_agent);

  state::Result<std::vector<IpAddress>> resolved = Resolve(parsed->host);
  if (!resolved.ok())
    return finish(Failure(DeliveryFailure::kConnection, resolved.status().message()));
  std::vector<IpAddress> allowed;
  std::string refused;
  for (const IpAddress& address : *resolved) {
    if (options_.policy.Allowed(address)) {
      allowed.push_back(address);
    } else {
      refused += (refused.empty() ? "" : ", ") + address.ToString() + " (" +
                 std::string(AddressClassName(AddressPolicy::Classify(address))) + ")";
    }
  }
  if (allowed.empty()) {
    std::string error = resolved->size() == 1 && IpAddress::Parse(parsed->host)
                            ? "the address " + refused + " is refused"
                            : "every address of " + parsed->host + " is refused: " + refused;
    return finish(Failure(DeliveryFailure::kBlockedAddress, error));
  }
  if (Clock::now() >= deadline)
    return finish(Failure(
        DeliveryFailure::kTimeout,
        "resolving " + parsed->host + " took longer than " + std::to_string(timeout_ms) + " ms"));

  // Addresses are tried in order while connecting fails outright (an IPv6 address on a host
  // without IPv6, say); once a connection exists its outcome is the answer.
  Attempt attempt;
  for (size_t i = 0; i < allowed.size(); ++i) {
    attempt =
        PostTo(options_, *pool_, *watcher_, *parsed, allowed[i], wire, body, deadline, timeout_ms);
    if (attempt.stale && Clock::now() < deadline)
      attempt = PostTo(options_, *pool_, *watcher_, *parsed, allowed[i], wire, body, deadline,
                       timeout_ms, /*fresh=*/true);
    if (!attempt.not_connected || Clock::now() >= deadline) break;
  }
  return finish(std::move(attempt.outcome));
}

}  // namespace cm::http
