#include "topology/query/streams_routes.h"

#include <nlohmann/json.hpp>

namespace cm::topology {

void AddStreamsRoutes(HttpServer& server, const KafkaStreams& streams,
                      const StreamsMetadata& metadata) {
  server.Route("GET", "/ready", RouteAccess::Public(), [&streams](const HttpRequest&) {
    auto report = streams.ReadyReport();
    HttpResponse r = HttpResponse::Json(report["ready"].get<bool>() ? 200 : 503, report);
    if (r.status == 503) r.headers.emplace("Retry-After", "1");
    return r;
  });
  server.Route(
      "GET", "/v1/topology", RouteAccess::Scope(Principal::kAdminScope),
      [&streams, &metadata](const HttpRequest&) {
        nlohmann::json j = streams.topology().Describe();
        nlohmann::json tasks = nlohmann::json::array();
        for (const auto& t : streams.Threads()) {
          for (const auto& task : t.tasks) {
            tasks.push_back({{"task", task.task},
                             {"thread", t.index},
                             {"state", task.running ? "running" : "restoring"}});
          }
        }
        nlohmann::json instances = nlohmann::json::array();
        for (const auto& i : metadata.Instances()) {
          instances.push_back(
              {{"instanceId", i.instance_id}, {"endpoint", i.endpoint}, {"tasks", i.tasks}});
        }
        j["instanceId"] = streams.config().instance_id;
        j["tasks"] = tasks;
        j["instances"] = instances;
        return HttpResponse::Json(200, j);
      });
  server.AddMetrics([&streams] { return streams.RenderMetrics(); });
}

}  // namespace cm::topology
