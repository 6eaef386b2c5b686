#include "topology/query/http_reactor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "topology/common/thread_name.h"

namespace cm::topology {

namespace {

using Clock = std::chrono::steady_clock;

// After a refusal, what the client still sends is read and dropped for this long, so that
// closing does not reset the connection before the client has read the answer.
constexpr auto kDrainTime = std::chrono::seconds(1);
// The reactor sleeps until the earliest deadline of the connections it holds, and at least
// this often: waking every 50 ms whatever the deadlines were was 20 of an idle instance's
// wake-ups a second, each one a chance to delay a query.
constexpr auto kMaxSleep = std::chrono::seconds(1);
constexpr size_t kReadChunk = 16 << 10;

const char* Reason(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

std::string RawErrorResponse(int status, const std::string& code, const std::string& message,
                             const std::string& extra_headers) {
  std::string body =
      nlohmann::json{
          {"error", {{"code", code}, {"message", message}, {"details", nlohmann::json::object()}}}}
          .dump();
  return "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body;
}

bool IsHealthPath(const std::string& path) {
  return path == "/health" || path == "/ready" || path == "/metrics";
}

// Whether a request with this head can go to a worker: its body of known length is all here.
// A chunked body, or one the client sends only after 100 Continue, is read by the worker
// within the I/O timeout.
bool BodyArrived(const RequestHead& head, size_t buffered) {
  return head.chunked || head.expect_continue ||
         buffered >= head.head_bytes + head.content_length.value_or(0);
}

}  // namespace

HttpConnection::HttpConnection(int socket, std::atomic<size_t>& open_count)
    : fd(socket), open_count_(open_count) {
  open_count_.fetch_add(1);
}

HttpConnection::~HttpConnection() {
  transport.reset();  // a TLS goodbye needs the socket still open
  ::close(fd);
  open_count_.fetch_sub(1);
}

HttpReactor::HttpReactor(HttpServerOptions options, Serve serve, std::unique_ptr<TlsContext> tls)
    : options_(std::move(options)), serve_(std::move(serve)), tls_(std::move(tls)) {
  health_.name = "health";
  reads_.name = "read";
  writes_.name = "write";
  for (Lane* lane : {&health_, &reads_, &writes_}) lane->max_queued = options_.max_queued;
}

HttpReactor::~HttpReactor() {
  Stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

state::Result<int> HttpReactor::Listen(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    return state::Status::Unavailable("cannot resolve " + host + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);
  int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return state::Status::Unavailable(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    int err = errno;
    ::close(fd);
    return state::Status::Unavailable("cannot bind HTTP on " + host + ":" + service + ": " +
                                      std::strerror(err));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  listen_fd_ = fd;
  return bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                                     : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

void HttpReactor::Start() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  for (int fd : {listen_fd_, wake_fd_}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
  }
  // Two health workers: /health answers while every other worker is busy.
  for (size_t i = 0; i < 2; ++i)
    health_.threads.emplace_back([this] {
      NameCurrentThread("cm-http-health");
      Work(health_);
    });
  for (size_t i = 0; i < std::max<size_t>(1, options_.threads); ++i) {
    reads_.threads.emplace_back([this] {
      NameCurrentThread("cm-http-read");
      Work(reads_);
    });
    writes_.threads.emplace_back([this] {
      NameCurrentThread("cm-http-write");
      Work(writes_);
    });
  }
  next_sweep_ = Clock::now() + kMaxSleep;
  loop_ = std::thread([this] {
    NameCurrentThread("cm-http");
    Loop();
  });
}

void HttpReactor::Stop() {
  if (stopping_.exchange(true)) return;
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
  if (loop_.joinable()) loop_.join();
  for (Lane* lane : {&health_, &reads_, &writes_}) {
    {
      std::lock_guard<std::mutex> lock(lane->mu);
      lane->queue.clear();
    }
    lane->cv.notify_all();
    for (auto& t : lane->threads) t.join();
    lane->threads.clear();
  }
  std::lock_guard<std::mutex> lock(returned_mu_);
  returned_.clear();
}

void HttpReactor::Loop() {
  std::vector<epoll_event> events(256);
  while (!stopping_.load()) {
    // Rounded up: waking a little before the deadline would only sleep again.
    const auto sleep = std::chrono::ceil<std::chrono::milliseconds>(next_sweep_ - Clock::now());
    int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                       static_cast<int>(std::max<int64_t>(0, sleep.count())));
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listen_fd_) {
        AcceptAll();
      } else if (fd == wake_fd_) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = ::read(wake_fd_, &count, sizeof count);
        TakeReturned();
      } else {
        OnReadable(fd);
      }
    }
    if (Clock::now() >= next_sweep_) SweepDeadlines();
  }
  connections_.clear();
}

void HttpReactor::AcceptAll() {
  for (;;) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int fd =
        accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: all accepted; EMFILE and the like: the next round retries
    if (open_connections_.load() >= options_.max_connections) {
      // A TLS client could read the answer only after a handshake, which is what an overloaded
      // server must not spend: it is just closed.
      if (!tls_) {
        std::string answer =
            RawErrorResponse(503, "overloaded", "too many open connections", "Retry-After: 1\r\n");
        [[maybe_unused]] ssize_t w = ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
      }
      ::close(fd);
      CountRefusal("too_many_connections");
      continue;
    }
    int one = 1;
    // Without it, small keep-alive answers meet Nagle plus delayed ACK: about 40 ms each.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto connection = std::make_unique<HttpConnection>(fd, open_connections_);
    connection->transport = tls_ ? tls_->Accept(fd) : Transport::Plain(fd);
    if (!connection->transport) continue;  // no memory for a TLS session: closed
    char ip[INET6_ADDRSTRLEN] = {};
    if (peer.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&peer);
      inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
      connection->remote_port = ntohs(a->sin6_port);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&peer);
      inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
      connection->remote_port = ntohs(a->sin_port);
    }
    connection->remote_ip = ip;
    // A TLS handshake must be done within the request timeout, as a request's head must.
    connection->state = tls_ ? HttpConnection::State::kHandshaking : HttpConnection::State::kIdle;
    SetDeadline(*connection,
                Clock::now() + (tls_ ? options_.request_timeout : options_.idle_timeout));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    connections_.emplace(fd, std::move(connection));
  }
}

void HttpReactor::OnReadable(int fd) {
  auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  HttpConnection& c = *it->second;
  if (c.state == HttpConnection::State::kHandshaking) {
    Transport::Io io = c.transport->Handshake();
    if (io == Transport::Io::kWantRead || io == Transport::Io::kWantWrite) {
      Watch(c, io == Transport::Io::kWantWrite);
      return;
    }
    if (io != Transport::Io::kOk) {
      CountRefusal("tls_handshake_failed");
      Close(fd);
      return;
    }
    c.state = HttpConnection::State::kIdle;
    SetDeadline(c, Clock::now() + options_.idle_timeout);
    // On to reading: the request may have come with the handshake's last flight.
  }
  const size_t cap = BufferCap();
  bool closed = false;
  bool writable = false;
  char chunk[kReadChunk];
  // Until the transport would block: TLS may hold decrypted bytes the socket no longer shows.
  for (;;) {
    size_t n = 0;
    Transport::Io io = c.transport->Read(chunk, sizeof chunk, n);
    if (io == Transport::Io::kOk) {
      if (c.state == HttpConnection::State::kDraining) continue;
      c.buffer.append(chunk, n);
      if (c.buffer.size() >= cap) break;
      continue;
    }
    writable = io == Transport::Io::kWantWrite;
    closed = io == Transport::Io::kClosed || io == Transport::Io::kError;
    break;
  }
  if (!closed) Watch(c, writable);
  if (c.state == HttpConnection::State::kDraining) {
    if (closed) Close(fd);
    return;
  }
  if (c.state == HttpConnection::State::kIdle && !c.buffer.empty()) {
    c.state = HttpConnection::State::kReading;
    SetDeadline(c, Clock::now() + options_.request_timeout);
  }
  Advance(fd);
  // A peer that closed without a complete request is gone; one whose request was handed to
  // a worker gets its answer (only the read side may be closed).
  if (closed && connections_.count(fd)) Close(fd);
}

void HttpReactor::Advance(int fd) {
  HttpConnection& c = *connections_.at(fd);
  if (c.buffer.empty()) return;
  HeadParse parse = ParseRequestHead(c.buffer, options_.limits);
  if (parse.kind == HeadParse::Kind::kIncomplete) return;
  if (parse.kind == HeadParse::Kind::kRefused) {
    Refuse(c, parse.refusal.status, parse.refusal.code, parse.refusal.message);
    return;
  }
  const RequestHead& head = parse.head;
  if (!BodyArrived(head, c.buffer.size())) return;
  // The lane decides both where the request runs and whether it is rate limited: health
  // checks are never limited.
  Lane& lane = LaneFor(head);
  if (&lane != &health_) {
    if (int wait = Admit(c.remote_ip); wait > 0) {
      Refuse(c, 429, "rate_limited", "too many requests from " + c.remote_ip,
             "Retry-After: " + std::to_string(wait) + "\r\n");
      return;
    }
  }
  std::unique_lock<std::mutex> lock(lane.mu);
  if (lane.queue.size() >= lane.max_queued) {
    lock.unlock();
    Refuse(c, 503, "overloaded", "the server has too many requests waiting", "Retry-After: 1\r\n");
    return;
  }
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  auto node = connections_.extract(fd);
  node.mapped()->head = head;
  node.mapped()->deadline = Clock::now() + options_.io_timeout;
  lane.queue.push_back(std::move(node.mapped()));
  lock.unlock();
  lane.cv.notify_one();
}

HttpReactor::Lane& HttpReactor::LaneFor(const RequestHead& head) {
  bool read = head.method == "GET" || head.method == "HEAD" || head.method == "OPTIONS";
  if (read && IsHealthPath(head.path)) return health_;
  return read ? reads_ : writes_;
}

int HttpReactor::Admit(const std::string& address) {
  if (options_.rate_limit <= 0) return 0;
  std::lock_guard<std::mutex> lock(buckets_mu_);
  const double burst =
      std::max(1.0, options_.rate_burst > 0 ? options_.rate_burst : options_.rate_limit);
  auto now = Clock::now();
  if (buckets_.size() > 100'000) {
    // Forget the addresses whose bucket has refilled: they carry no state worth keeping.
    std::erase_if(buckets_, [&](const auto& entry) {
      double elapsed = std::chrono::duration<double>(now - entry.second.updated).count();
      return entry.second.tokens + elapsed * options_.rate_limit >= burst;
    });
  }
  auto [it, fresh] = buckets_.try_emplace(address, TokenBucket{burst, now});
  TokenBucket& bucket = it->second;
  if (!fresh) {
    double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
    bucket.tokens = std::min(burst, bucket.tokens + elapsed * options_.rate_limit);
    bucket.updated = now;
  }
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1 - bucket.tokens) / options_.rate_limit)));
}

void HttpReactor::Work(Lane& lane) {
  for (;;) {
    std::unique_ptr<HttpConnection> c;
    {
      std::unique_lock<std::mutex> lock(lane.mu);
      ++lane.idle;
      lane.cv.wait(lock, [&] { return stopping_.load() || !lane.queue.empty(); });
      --lane.idle;
      if (lane.queue.empty()) return;
      c = std::move(lane.queue.front());
      lane.queue.pop_front();
    }
    bool keep = serve_(*c);
    while (keep && !stopping_.load() && NextRequestInline(lane, *c)) keep = serve_(*c);
    if (!keep || stopping_.load()) continue;  // c closes here
    c->state = c->buffer.empty() ? HttpConnection::State::kIdle : HttpConnection::State::kReading;
    c->deadline =
        Clock::now() + (c->buffer.empty() ? options_.idle_timeout : options_.request_timeout);
    {
      std::lock_guard<std::mutex> lock(returned_mu_);
      returned_.push_back(std::move(c));
    }
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }
}

bool HttpReactor::NextRequestInline(Lane& lane, HttpConnection& c) {
  if (options_.keep_alive_linger.count() <= 0) return false;
  if (c.buffer.empty() && !c.transport->HasPending()) {
    {
      // Never the lane's last idle worker: a queued request would wait out the linger.
      std::lock_guard<std::mutex> lock(lane.mu);
      if (lane.idle == 0) return false;
    }
    pollfd p{c.fd, POLLIN, 0};
    const auto linger = options_.keep_alive_linger;
    timespec wait{static_cast<time_t>(linger.count() / 1'000'000),
                  static_cast<long>(linger.count() % 1'000'000 * 1'000)};
    if (ppoll(&p, 1, &wait, nullptr) <= 0 || (p.revents & POLLIN) == 0) return false;
  }
  char chunk[kReadChunk];
  while (c.buffer.size() < BufferCap()) {
    size_t n = 0;
    if (c.transport->Read(chunk, sizeof chunk, n) != Transport::Io::kOk) break;
    c.buffer.append(chunk, n);
  }
  // Anything but a whole request of this lane is the reactor's: the rest of a head, a
  // refusal, a close, another lane.
  HeadParse parse = ParseRequestHead(c.buffer, options_.limits);
  if (parse.kind != HeadParse::Kind::kComplete) return false;
  const RequestHead& head = parse.head;
  if (!BodyArrived(head, c.buffer.size())) return false;
  if (&LaneFor(head) != &lane) return false;
  if (&lane != &health_ && Admit(c.remote_ip) > 0) return false;  // the reactor answers 429
  c.head = head;
  c.deadline = Clock::now() + options_.io_timeout;
  return true;
}

void HttpReactor::TakeReturned() {
  std::vector<std::unique_ptr<HttpConnection>> back;
  {
    std::lock_guard<std::mutex> lock(returned_mu_);
    back.swap(returned_);
  }
  for (auto& c : back) {
    int fd = c->fd;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
    HttpConnection& held = *c;
    held.wait_writable = false;
    SweepBy(held.deadline);
    connections_.emplace(fd, std::move(c));
    // A pipelined request may already be complete in the buffer, or wait decrypted in the
    // TLS session, where epoll cannot see it.
    Advance(fd);
    if (connections_.count(fd) && held.state != HttpConnection::State::kDraining &&
        held.transport->HasPending())
      OnReadable(fd);
  }
}

void HttpReactor::SweepDeadlines() {
  auto now = Clock::now();
  next_sweep_ = now + kMaxSleep;
  std::vector<int> expired;
  for (const auto& [fd, c] : connections_) {
    if (c->deadline <= now)
      expired.push_back(fd);
    else
      SweepBy(c->deadline);
  }
  for (int fd : expired) {
    HttpConnection& c = *connections_.at(fd);
    if (c.state == HttpConnection::State::kHandshaking) {
      CountRefusal("tls_handshake_timeout");
      Close(fd);
    } else if (c.state == HttpConnection::State::kReading) {
      Refuse(c, 408, "request_timeout",
             "the request did not arrive within " +
                 std::to_string(options_.request_timeout.count()) + " ms");
    } else {
      Close(fd);
    }
  }
}

void HttpReactor::Refuse(HttpConnection& c, int status, const std::string& code,
                         const std::string& message, const std::string& extra_headers) {
  CountRefusal(code);
  std::string answer = RawErrorResponse(status, code, message, extra_headers);
  // The answer is small: it fits the socket's send buffer, or the client is not reading.
  for (size_t sent = 0, n = 0; sent < answer.size(); sent += n) {
    if (c.transport->Write(answer.data() + sent, answer.size() - sent, n) != Transport::Io::kOk)
      break;
  }
  c.transport->Shutdown();
  ::shutdown(c.fd, SHUT_WR);
  c.buffer.clear();
  c.buffer.shrink_to_fit();
  c.state = HttpConnection::State::kDraining;
  SetDeadline(c, Clock::now() + kDrainTime);
}

void HttpReactor::Close(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  connections_.erase(fd);
}

void HttpReactor::Watch(HttpConnection& c, bool writable) {
  if (c.wait_writable == writable) return;
  c.wait_writable = writable;
  epoll_event ev{};
  ev.events = (writable ? EPOLLOUT : EPOLLIN) | EPOLLRDHUP;
  ev.data.fd = c.fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
}

void HttpReactor::CountRefusal(const std::string& code) {
  std::lock_guard<std::mutex> lock(refusals_mu_);
  ++refusals_[code];
}

void HttpReactor::RenderMetrics(PrometheusText& out) const {
  out.Family("cmstream_http_connections", "gauge", "Open HTTP client connections.");
  out.Sample("cmstream_http_connections", {}, open_connections_.load());
  out.Family("cmstream_http_refused_total", "counter",
             "HTTP requests refused before a handler ran, by reason.");
  {
    std::lock_guard<std::mutex> lock(refusals_mu_);
    for (const auto& [code, count] : refusals_)
      out.Sample("cmstream_http_refused_total", {{"reason", code}}, count);
  }
  out.Family("cmstream_http_queued_requests", "gauge",
             "Complete requests waiting for a worker, per lane.");
  for (const Lane* lane : {&health_, &reads_, &writes_}) {
    std::lock_guard<std::mutex> lock(lane->mu);
    out.Sample("cmstream_http_queued_requests", {{"lane", lane->name}}, lane->queue.size());
  }
}

}  // namespace cm::topology
