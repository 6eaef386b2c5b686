#pragma once

// The HTTP server's connections, held without a thread each. One reactor thread (epoll)
// accepts, reads every request's head and, when its length is known, its body; it refuses
// what breaks a limit with a JSON 4xx, and only a complete request is handed to a worker.
// So a client that sends slowly, or keeps an idle keep-alive connection, costs a socket and
// a buffer, never a worker; and the workers are split into lanes (health checks, reads,
// writes), so 200 clients waiting on commands cannot delay /health or a quota check.
// A worker that has answered waits a moment (HttpServerOptions::keep_alive_linger) for the
// connection's next request and serves it itself: a keep-alive client sending requests one
// after another then costs one wake-up per request, not three (reactor, worker, reactor).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "state/status.h"
#include "topology/common/prometheus_text.h"
#include "topology/query/http_server_options.h"
#include "topology/query/request_head.h"
#include "topology/query/tls_context.h"
#include "topology/query/transport.h"

namespace cm::topology {

// One client connection. Moved between the reactor and a worker; closes its socket.
struct HttpConnection {
  // kHandshaking: TLS only, until the handshake completes (or the request deadline passes).
  enum class State { kHandshaking, kIdle, kReading, kDraining };

  explicit HttpConnection(int socket, std::atomic<size_t>& open_count);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  int fd;
  // Plain or TLS; every read and write of the connection goes through it.
  std::unique_ptr<Transport> transport;
  std::string remote_ip;
  int remote_port = 0;
  // Bytes received and not yet served: the current request's head (and body) at the start.
  std::string buffer;
  RequestHead head;
  State state = State::kIdle;
  std::chrono::steady_clock::time_point deadline;
  // The reactor waits for the socket to become writable (TLS wants to write before it reads).
  bool wait_writable = false;

 private:
  std::atomic<size_t>& open_count_;
};

class HttpReactor {
 public:
  // Serves the request at the start of `connection.buffer` on a worker thread and leaves in
  // the buffer what follows it. False when the connection must be closed.
  using Serve = std::function<bool(HttpConnection& connection)>;

  // With `tls`, every connection speaks TLS: the reactor runs the handshake, and a connection
  // that has not finished it by the request timeout is closed.
  HttpReactor(HttpServerOptions options, Serve serve, std::unique_ptr<TlsContext> tls = nullptr);
  ~HttpReactor();
  HttpReactor(const HttpReactor&) = delete;
  HttpReactor& operator=(const HttpReactor&) = delete;

  // Binds host:port (0 picks a free port) and returns the port.
  state::Result<int> Listen(const std::string& host, int port);
  void Start();
  // Stops accepting, lets workers finish the requests they serve, closes every connection.
  void Stop();
  bool stopping() const { return stopping_.load(); }

  // Open connections, refusals by reason, queued requests per lane.
  void RenderMetrics(PrometheusText& out) const;

 private:
  struct Lane {
    std::string name;
    size_t max_queued = 0;
    mutable std::mutex mu;
    std::condition_variable cv;
    std::deque<std::unique_ptr<HttpConnection>> queue;
    std::vector<std::thread> threads;
    size_t idle = 0;  // workers waiting for a request (under mu)
  };
  struct TokenBucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point updated;
  };

  void Loop();
  void AcceptAll();
  void OnReadable(int fd);
  void Advance(int fd);
  void TakeReturned();
  void SweepDeadlines();
  // The reactor wakes by `deadline` to sweep (reactor thread only).
  void SweepBy(std::chrono::steady_clock::time_point deadline) {
    next_sweep_ = std::min(next_sweep_, deadline);
  }
  // Sets the deadline of a connection the reactor holds, and wakes for it.
  void SetDeadline(HttpConnection& connection, std::chrono::steady_clock::time_point deadline) {
    connection.deadline = deadline;
    SweepBy(deadline);
  }
  void Refuse(HttpConnection& connection, int status, const std::string& code,
              const std::string& message, const std::string& extra_headers = {});
  void Close(int fd);
  // Has epoll report `fd` when readable, or when writable after Transport::Io::kWantWrite.
  void Watch(HttpConnection& connection, bool writable);
  // 0 when admitted, else the seconds to wait before the next request.
  int Admit(const std::string& address);
  Lane& LaneFor(const RequestHead& head);
  void Work(Lane& lane);
  // After a response: whether the connection's next request came within the linger, is
  // complete, belongs to `lane` and is admitted, so this worker serves it too.
  bool NextRequestInline(Lane& lane, HttpConnection& connection);
  // The most a connection's buffer holds: one request's worth; the limits refuse anything
  // larger.
  size_t BufferCap() const {
    return options_.limits.max_header_bytes + options_.limits.max_body_bytes + 1;
  }
  void CountRefusal(const std::string& code);

  HttpServerOptions options_;
  Serve serve_;
  // Declared before the connections: their TLS sessions use it until they close.
  std::unique_ptr<TlsContext> tls_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread loop_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> open_connections_{0};
  // Connections the reactor holds (reactor thread only); the others are at a worker.
  std::unordered_map<int, std::unique_ptr<HttpConnection>> connections_;
  std::mutex returned_mu_;
  std::vector<std::unique_ptr<HttpConnection>> returned_;
  Lane health_, reads_, writes_;
  std::mutex buckets_mu_;  // the reactor and lingering workers admit requests
  std::unordered_map<std::string, TokenBucket> buckets_;
  mutable std::mutex refusals_mu_;
  std::map<std::string, uint64_t> refusals_;
  // The earliest deadline of a connection the reactor holds, or a second from the last sweep.
  std::chrono::steady_clock::time_point next_sweep_;
};

}  // namespace cm::topology
