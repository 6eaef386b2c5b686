#include "topology/query/http_server.h"

#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <vector>

#include "topology/common/log.h"
#include "topology/common/prometheus_text.h"
#include "topology/common/wall_clock.h"
#include "topology/query/http_reactor.h"
#include "topology/query/route_pattern.h"
#include "topology/query/tls_context.h"

namespace cm::topology {

namespace {
constexpr double kLatencyBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5};
}

HttpResponse HttpResponse::Json(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  // Messages can quote client input (a query value, a header): bytes that are not UTF-8 are
  // written as U+FFFD rather than turning a 4xx into an exception and a 500.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

HttpResponse HttpResponse::Error(int status, std::string_view code, std::string_view message,
                                 nlohmann::json details) {
  return Json(status,
              {{"error", {{"code", code}, {"message", message}, {"details", std::move(details)}}}});
}

HttpResponse HttpResponse::FromStatus(const state::Status& status) {
  switch (status.code()) {
    case state::Status::Code::kOk:
      return Json(200, nlohmann::json::object());
    case state::Status::Code::kInvalidArgument:
      return Error(400, "validation_error", status.message());
    case state::Status::Code::kNotFound:
      return Error(404, "not_found", status.message());
    case state::Status::Code::kConflict:
      return Error(409, "conflict", status.message());
    case state::Status::Code::kUnavailable: {
      HttpResponse r = Error(503, "unavailable", status.message());
      r.headers["Retry-After"] = "1";
      return r;
    }
    case state::Status::Code::kCorruption:
    case state::Status::Code::kIOError:
    case state::Status::Code::kAborted:
      return Error(500, "internal", status.message());
  }
  return Error(500, "internal", status.message());
}

std::string HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        }))
      return v;
  }
  return {};
}

namespace {

std::string PercentEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace

std::string HttpRequest::CanonicalTarget() const {
  std::string target = path;
  char sep = '?';
  for (const auto& [k, v] : query) {
    target += sep + PercentEncode(k) + "=" + PercentEncode(v);
    sep = '&';
  }
  return target;
}

namespace {

using Clock = std::chrono::steady_clock;

// cpp-httplib's request parsing, routing and response writing, fed by our connection layer:
// process_request is the library's own entry for one request on a stream.
class RouteTable : public httplib::Server {
 public:
  bool ServeOne(httplib::Stream& stream, bool close_connection, bool& connection_closed) {
    return process_request(stream, close_connection, connection_closed, nullptr);
  }
};

// A connection as cpp-httplib reads it: first the bytes the reactor already received, then
// the connection's transport (plain or TLS), each wait bounded by the connection's deadline.
class ConnectionStream : public httplib::Stream {
 public:
  ConnectionStream(HttpConnection& connection, std::chrono::milliseconds io_timeout)
      : c_(connection), io_timeout_(io_timeout) {}
  // What was not consumed stays in the connection's buffer for the next request.
  ~ConnectionStream() override { c_.buffer.erase(0, offset_); }

  bool is_readable() const override {
    return offset_ < c_.buffer.size() || c_.transport->HasPending() || Wait(POLLIN);
  }
  bool is_writable() const override { return Wait(POLLOUT); }

  ssize_t read(char* ptr, size_t size) override {
    // What was written goes out before waiting for the peer (a 100 Continue, for one).
    if (!Flush()) return -1;
    if (offset_ < c_.buffer.size()) {
      size_t n = std::min(size, c_.buffer.size() - offset_);
      std::memcpy(ptr, c_.buffer.data() + offset_, n);
      offset_ += n;
      return static_cast<ssize_t>(n);
    }
    for (;;) {
      size_t n = 0;
      Transport::Io io = c_.transport->Read(ptr, size, n);
      if (io == Transport::Io::kOk) return static_cast<ssize_t>(n);
      if (io == Transport::Io::kClosed) return 0;
      if (!WaitFor(io, c_.deadline)) return -1;
    }
  }

  // Buffered: cpp-httplib writes a response's head and body separately, and two sends would
  // be two TCP segments (TCP_NODELAY), waking the client twice. Flush sends what is held.
  ssize_t write(const char* ptr, size_t size) override {
    out_.append(ptr, size);
    if (out_.size() >= kWriteBufferBytes && !Flush()) return -1;
    return static_cast<ssize_t>(size);
  }

  bool Flush() {
    if (out_.empty()) return true;  // every read flushes; most find nothing held
    auto deadline = Clock::now() + io_timeout_;
    size_t done = 0;
    while (done < out_.size()) {
      size_t n = 0;
      Transport::Io io = c_.transport->Write(out_.data() + done, out_.size() - done, n);
      if (io == Transport::Io::kOk) {
        done += n;
        continue;
      }
      if (!WaitFor(io, deadline)) return false;
    }
    out_.clear();
    return true;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.remote_ip;
    port = c_.remote_port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip.clear();
    port = 0;
  }
  socket_t socket() const override { return c_.fd; }

 private:
  bool Wait(short events) const { return Wait(events, c_.deadline); }
  // Waits for what a transport call that would block needs; false on an error or timeout.
  bool WaitFor(Transport::Io io, Clock::time_point deadline) const {
    if (io == Transport::Io::kWantRead) return Wait(POLLIN, deadline);
    if (io == Transport::Io::kWantWrite) return Wait(POLLOUT, deadline);
    return false;
  }
  bool Wait(short events, Clock::time_point deadline) const {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{c_.fd, events, 0};
      int rc = ::poll(&p, 1, static_cast<int>(left.count()));
      if (rc > 0) return true;
      if (rc == 0 || errno != EINTR) return false;
    }
  }

  static constexpr size_t kWriteBufferBytes = 64 * 1024;

  HttpConnection& c_;
  std::chrono::milliseconds io_timeout_;
  size_t offset_ = 0;
  std::string out_;
};

}  // namespace

using RouteHandler = std::function<void(const httplib::Request&, httplib::Response&,
                                        std::map<std::string, std::string>)>;

struct HttpServer::Impl {
  struct Entry {
    RoutePattern pattern;
    std::string method;
    RouteHandler handler;
  };
  RouteTable server;
  std::unique_ptr<HttpReactor> reactor;
  // Every route in registration order; the first whose method and pattern match serves.
  // Written before Start, read by the server threads after.
  std::vector<Entry> routes;

  // cpp-httplib's one handler per method: it finds our route, or answers 405 with Allow
  // when the path exists under other methods only (RFC 9110 §15.5.6), else 404.
  void Dispatch(const httplib::Request& req, httplib::Response& res) const {
    const std::string_view method = req.method == "HEAD" ? "GET" : std::string_view(req.method);
    std::string allow;
    for (const Entry& e : routes) {
      auto params = e.pattern.Match(req.path);
      if (!params) continue;
      if (e.method == method) {
        e.handler(req, res, std::move(*params));
        return;
      }
      if (allow.find(e.method) == std::string::npos)
        allow += (allow.empty() ? "" : ", ") + e.method;
    }
    HttpResponse r = allow.empty()
                         ? HttpResponse::Error(404, "not_found", "no such route")
                         : HttpResponse::Error(405, "method_not_allowed",
                                               req.method + " is not allowed here; use " + allow);
    res.status = r.status;
    if (!allow.empty()) res.set_header("Allow", allow);
    res.set_content(r.body, r.content_type);
  }
};

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>()), options_(options) {
  // One catch-all per method: cpp-httplib would otherwise run a std::regex per route.
  auto dispatch = [impl = impl_.get()](const httplib::Request& req, httplib::Response& res) {
    impl->Dispatch(req, res);
  };
  impl_->server.Get(".*", dispatch);
  impl_->server.Post(".*", dispatch);
  impl_->server.Put(".*", dispatch);
  impl_->server.Patch(".*", dispatch);
  impl_->server.Delete(".*", dispatch);
  Route("GET", "/health", RouteAccess::Public(), [](const HttpRequest&) {
    return HttpResponse::Json(200, {{"status", "ok"}});
  });
  Route("GET", "/metrics", RouteAccess::Public(), [this](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = RenderMetrics();
    return r;
  });
}

HttpServer::~HttpServer() { Stop(); }

std::vector<RouteInfo> HttpServer::Routes() const { return route_infos_; }

std::variant<Principal, HttpResponse> HttpServer::Admit(const HttpRequest& r,
                                                        const RouteAccess& access) const {
  auto unauthenticated = [](const std::string& message) {
    HttpResponse out = HttpResponse::Error(401, "unauthenticated", message);
    out.headers.emplace("WWW-Authenticate", "Bearer");
    return out;
  };
  Principal principal;
  if (!r.Header(ClusterSigner::kForwardedByHeader).empty()) {
    // Another instance authenticated the caller; only the cluster secret makes that believable.
    if (cluster_signer_ == nullptr)
      return unauthenticated("this instance accepts no forwarded requests (no --cluster-secret)");
    auto verified = cluster_signer_->Verify(r, WallClockMs() / 1000);
    if (!verified.ok()) return unauthenticated(verified.status().message());
    principal = std::move(verified).value();
  } else {
    if (!authenticator_) return unauthenticated("this server has no way to check credentials");
    auto authenticated = authenticator_->Authenticate(r);
    if (!authenticated.ok()) return unauthenticated(authenticated.status().message());
    principal = std::move(authenticated).value();
  }
  if (!principal.HasScope(access.scope))
    return HttpResponse::Error(403, "forbidden", "this credential lacks the scope " + access.scope,
                               {{"requiredScope", access.scope}});
  if (!access.organization_param.empty()) {
    auto it = r.path_params.find(access.organization_param);
    // Another organization's data is answered as if it did not exist.
    if (it != r.path_params.end() && !principal.CanAccess(it->second))
      return HttpResponse::Error(404, "not_found", "no such organization");
  }
  return principal;
}

void HttpServer::Route(const std::string& method, const std::string& pattern, RouteAccess access,
                       HttpHandler handler) {
  route_infos_.push_back({method, pattern, access});
  std::string key = method + " " + pattern;
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_[key].buckets.assign(std::size(kLatencyBounds), 0);
  }
  auto wrapped = [this, key, method, pattern, access = std::move(access),
                  handler = std::move(handler)](const httplib::Request& req, httplib::Response& res,
                                                std::map<std::string, std::string> params) {
    auto started = std::chrono::steady_clock::now();
    HttpRequest r;
    r.method = method;
    r.route = pattern;
    r.target = req.target;
    r.path = req.path;
    r.path_params = std::move(params);
    for (const auto& [k, v] : req.params) r.query[k] = v;
    for (const auto& [k, v] : req.headers) r.headers[k] = v;
    r.body = req.body;
    HttpResponse out;
    bool admitted = access.is_public;
    if (!access.is_public) {
      auto admission = Admit(r, access);
      if (auto* p = std::get_if<Principal>(&admission)) {
        r.principal = std::move(*p);
        admitted = true;
      } else {
        out = std::get<HttpResponse>(std::move(admission));
      }
    }
    if (admitted) {
      try {
        out = method != "GET" && !reject_writes_.empty()
                  ? HttpResponse::Error(409, "read_only", reject_writes_)
                  : handler(r);
      } catch (const std::exception& e) {
        out = HttpResponse::Error(500, "internal", e.what());
      }
    }
    if (method != "GET" && !access.is_public) {
      // Who changed what (or tried to): one JSON line per mutating request, forwarded copies
      // included, since the owner is where the change is applied.
      std::string org;
      if (!access.organization_param.empty() && r.path_params.count(access.organization_param))
        org = r.path_params.at(access.organization_param);
      else if (r.principal)
        org = r.principal->organization;
      Log(LogLevel::kInfo, "audit",
          {{"principal", r.principal ? r.principal->key_id : ""},
           {"userId", r.principal ? r.principal->user_id : ""},
           {"organization", org},
           {"method", method},
           {"route", pattern},
           {"path", r.path},
           {"forwardedBy", r.Header(ClusterSigner::kForwardedByHeader)},
           {"status", out.status}});
    }
    res.status = out.status;
    for (const auto& [k, v] : out.headers) res.set_header(k, v);
    res.set_content(out.body, out.content_type);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::lock_guard<std::mutex> lock(stats_mu_);
    RouteStats& s = stats_[key];
    ++s.count;
    if (out.status >= 500) ++s.errors;
    s.seconds_sum += seconds;
    for (size_t i = 0; i < std::size(kLatencyBounds); ++i) {
      if (seconds <= kLatencyBounds[i]) ++s.buckets[i];
    }
  };
  impl_->routes.push_back({RoutePattern(pattern), method, std::move(wrapped)});
}

state::Status HttpServer::Start(const std::string& host, int port) {
  // The reactor refuses a larger Content-Length; this bounds a chunked body.
  impl_->server.set_payload_max_length(options_.limits.max_body_bytes);
  impl_->server.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;  // a route's own error answer
    if (res.status == 413) {
      auto r = HttpResponse::Error(413, "payload_too_large",
                                   "the request body is larger than " +
                                       std::to_string(options_.limits.max_body_bytes) + " bytes");
      res.set_content(r.body, r.content_type);
      return;
    }
    auto r = HttpResponse::Error(res.status, res.status == 404 ? "not_found" : "http_error",
                                 res.status == 404 ? "no such route" : "request failed");
    res.set_content(r.body, r.content_type);
  });
  std::unique_ptr<TlsContext> tls;
  if (options_.tls()) {
    auto loaded = TlsContext::Load(options_.tls_cert_file, options_.tls_key_file);
    if (!loaded.ok()) return loaded.status();
    tls = std::move(loaded).value();
  }
  impl_->reactor = std::make_unique<HttpReactor>(
      options_,
      [this](HttpConnection& c) {
        ConnectionStream stream(c, options_.io_timeout);
        bool closed = false;
        bool served = impl_->server.ServeOne(stream, impl_->reactor->stopping(), closed);
        return stream.Flush() && served && !closed;
      },
      std::move(tls));
  auto bound = impl_->reactor->Listen(host, port);
  if (!bound.ok()) return bound.status();
  port_ = *bound;
  impl_->reactor->Start();
  return state::Status::OK();
}

void HttpServer::Stop() {
  if (impl_->reactor) impl_->reactor->Stop();
}

std::string HttpServer::RenderMetrics() const {
  PrometheusText out;
  RenderRequestMetrics(out);
  std::string text = out.str();
  for (const auto& source : metrics_sources_) text += source();
  return text;
}

void HttpServer::RenderRequestMetrics(PrometheusText& out) const {
  if (impl_->reactor) impl_->reactor->RenderMetrics(out);
  std::lock_guard<std::mutex> lock(stats_mu_);
  out.Family("cmstream_http_request_duration_seconds", "histogram",
             "HTTP request latency per route.");
  for (const auto& [route, s] : stats_) {
    out.Histogram("cmstream_http_request_duration_seconds", {{"route", route}}, kLatencyBounds,
                  s.buckets, s.count, s.seconds_sum);
  }
  out.Family("cmstream_http_errors_total", "counter",
             "HTTP responses with a 5xx status per route.");
  for (const auto& [route, s] : stats_)
    out.Sample("cmstream_http_errors_total", {{"route", route}}, s.errors);
}

}  // namespace cm::topology
