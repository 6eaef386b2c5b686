#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "state/status.h"
#include "topology/common/prometheus_text.h"
#include "topology/query/authenticator.h"
#include "topology/query/cluster_signer.h"
#include "topology/query/http_server_options.h"
#include "topology/query/principal.h"

namespace cm::topology {

struct HttpRequest {
  std::string method;
  std::string route;   // the pattern the request matched, "/v1/usage/orgs/{org}/quota"
  std::string target;  // path and query exactly as the request line sent them
  std::string path;
  std::map<std::string, std::string> path_params;  // {name} segments of the route
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;
  std::string body;
  // Who sent it; set on every route that is not public.
  std::optional<Principal> principal;

  // A header's value by case-insensitive name, empty when absent.
  std::string Header(std::string_view name) const;
  // The path and the query with sorted, percent-encoded parameters: how a forwarded copy is
  // addressed, and what its cluster signature covers.
  std::string CanonicalTarget() const;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::map<std::string, std::string> headers;

  static HttpResponse Json(int status, const nlohmann::json& body);
  // {"error":{"code","message","details"}} with the status DESIGN.md §6 gives the code.
  static HttpResponse Error(int status, std::string_view code, std::string_view message,
                            nlohmann::json details = nlohmann::json::object());
  static HttpResponse FromStatus(const state::Status& status);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// A registered route, as the server lists them (a test can walk every route).
struct RouteInfo {
  std::string method;
  std::string pattern;
  RouteAccess access;
};
// Prometheus text of one part of the process (streams, bridge, snapshots).
using MetricsSource = std::function<std::string()>;

// The embedded HTTP server (cpp-httplib) behind a small routing interface, so applications
// register routes without depending on the HTTP library. Routes look like "/v1/teams/{id}".
// Every server answers GET /health (live) and GET /metrics (its own request metrics followed
// by every source added with AddMetrics), so no command registers them again. Connections are
// held by a reactor (http_reactor.h) that enforces HttpServerOptions before a handler runs.
// Every route states its RouteAccess: a route that is not public answers 401 without a
// credential the Authenticator accepts (or a forwarded request's valid cluster signature), 403
// without the route's scope, and 404 when its organization is not the principal's. Every
// request that is not a GET writes an audit line (principal, organization, route, status).
class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void Route(const std::string& method, const std::string& pattern, RouteAccess access,
             HttpHandler handler);
  // Who may call the routes that are not public; without one they all answer 401. Call before
  // Start.
  void SetAuthenticator(std::unique_ptr<Authenticator> authenticator) {
    authenticator_ = std::move(authenticator);
  }
  // Accept forwarded requests signed with this signer's secret. Call before Start.
  void SetClusterSigner(const ClusterSigner* signer) { cluster_signer_ = signer; }
  std::vector<RouteInfo> Routes() const;
  // Appends `source` to what GET /metrics renders. Call before Start.
  void AddMetrics(MetricsSource source) { metrics_sources_.push_back(std::move(source)); }
  // From now on every route but GET answers 409 `read_only` with `message` (a backfill serves
  // its figures but must not append commands or events). Call before Start.
  void RejectWrites(std::string message) { reject_writes_ = std::move(message); }
  // Binds host:port (port 0 picks a free one) and serves on background threads.
  state::Status Start(const std::string& host, int port);
  void Stop();
  int port() const { return port_; }
  // Prometheus text: request counts and latency per route, then every metrics source.
  std::string RenderMetrics() const;

 private:
  struct RouteStats {
    uint64_t count = 0;
    uint64_t errors = 0;
    double seconds_sum = 0;
    std::vector<uint64_t> buckets;
  };
  void RenderRequestMetrics(PrometheusText& out) const;
  // The principal of a request to a route that is not public, or the error answer.
  std::variant<Principal, HttpResponse> Admit(const HttpRequest& request,
                                              const RouteAccess& access) const;

  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  HttpServerOptions options_;
  std::string reject_writes_;
  std::unique_ptr<Authenticator> authenticator_;
  const ClusterSigner* cluster_signer_ = nullptr;
  std::vector<RouteInfo> route_infos_;
  std::vector<MetricsSource> metrics_sources_;
  mutable std::mutex stats_mu_;
  std::map<std::string, RouteStats> stats_;
};

}  // namespace cm::topology
