#include "topology/query/query_router.h"

#include <httplib.h>

#include "topology/common/wall_clock.h"

namespace cm::topology {

namespace {

HttpResponse Unavailable(const std::string& message) {
  HttpResponse r = HttpResponse::Error(503, "unavailable", message);
  r.headers["Retry-After"] = "1";
  return r;
}

}  // namespace

HttpResponse QueryRouter::Route(
    const HttpRequest& request, const TaskId& task,
    const std::function<HttpResponse(const ReadOnlyStores&)>& local) const {
  HttpResponse response;
  if (streams_.Query(task, [&](const ReadOnlyStores& stores) { response = local(stores); }).ok()) {
    return response;
  }
  return Elsewhere(request, task);
}

HttpResponse QueryRouter::RouteToOwner(const HttpRequest& request, const TaskId& task,
                                       const std::function<HttpResponse()>& on_owner) const {
  if (streams_.Query(task, [](const ReadOnlyStores&) {}).ok()) return on_owner();
  return Elsewhere(request, task);
}

HttpResponse QueryRouter::Elsewhere(const HttpRequest& request, const TaskId& task) const {
  auto owner = metadata_.OwnerOf(task.ToString());
  if (!owner || owner->instance_id == metadata_.instance_id()) {
    return Unavailable("task " + task.ToString() + " has no running owner yet; retry shortly");
  }
  if (!request.Header(ClusterSigner::kForwardedByHeader).empty()) {
    // Owners disagree for a moment during a rebalance: answer rather than bounce the request.
    return Unavailable("task " + task.ToString() + " is moving between instances; retry shortly");
  }
  if (forwarding_.signer == nullptr) {
    return Unavailable("task " + task.ToString() + " runs on " + owner->instance_id +
                       ", and this instance cannot forward requests without --cluster-secret");
  }
  return Forward(request, owner->endpoint);
}

HttpResponse QueryRouter::Forward(const HttpRequest& request, const std::string& endpoint) const {
  const std::string target = request.CanonicalTarget();
  httplib::Client client((forwarding_.https ? "https://" : "http://") + endpoint);
  if (forwarding_.https) {
    // Without a CA the instances trust each other's certificates blindly: they are meant to
    // talk over the cluster's private network (README "TLS").
    client.enable_server_certificate_verification(!forwarding_.ca_file.empty());
    if (!forwarding_.ca_file.empty()) client.set_ca_cert_path(forwarding_.ca_file);
  }
  client.set_connection_timeout(2);
  client.set_tcp_nodelay(true);
  client.set_read_timeout(30);
  httplib::Headers headers;
  for (auto& [k, v] :
       forwarding_.signer->Sign(request, metadata_.instance_id(), WallClockMs() / 1000))
    headers.emplace(k, v);
  if (auto key = request.Header("Idempotency-Key"); !key.empty())
    headers.emplace("Idempotency-Key", key);
  auto content_type = [&] {
    auto it = request.headers.find("Content-Type");
    return it == request.headers.end() ? std::string("application/json") : it->second;
  }();
  httplib::Result res(nullptr, httplib::Error::Unknown);
  if (request.method == "GET")
    res = client.Get(target, headers);
  else if (request.method == "POST")
    res = client.Post(target, headers, request.body, content_type);
  else if (request.method == "PUT")
    res = client.Put(target, headers, request.body, content_type);
  else if (request.method == "PATCH")
    res = client.Patch(target, headers, request.body, content_type);
  else if (request.method == "DELETE")
    res = client.Delete(target, headers, request.body, content_type);
  if (!res) return Unavailable("owner " + endpoint + " did not answer");
  HttpResponse out;
  out.status = res->status;
  out.body = res->body;
  out.content_type = res->get_header_value("Content-Type");
  if (res->has_header("Retry-After"))
    out.headers["Retry-After"] = res->get_header_value("Retry-After");
  return out;
}

}  // namespace cm::topology
