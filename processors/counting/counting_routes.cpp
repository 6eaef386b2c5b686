#include "processors/counting/counting_routes.h"

namespace cm::counting {

void AddCountingRoutes(topology::HttpServer& server, const topology::KafkaStreams& streams,
                       const topology::QueryRouter& router,
                       const CountingTopologyOptions& options) {
  server.Route(
      "GET", "/v1/counts/{key}", topology::RouteAccess::Scope(topology::Principal::kAdminScope),
      [&streams, &router, options](const topology::HttpRequest& req) {
        const std::string& key = req.path_params.at("key");
        int sub = *streams.topology().SubTopologyOfSource(options.input_topic);
        return router.Route(
            req, streams.TaskForKey(sub, key), [&](const topology::ReadOnlyStores& stores) {
              auto count = stores.KeyValue(options.store)->Get(key);
              if (!count)
                return topology::HttpResponse::Error(
                    404, "not_found", "no record with key '" + key + "' was counted");
              return topology::HttpResponse::Json(200,
                                                  {{"key", key}, {"count", std::stoll(*count)}});
            });
      });
}

}  // namespace cm::counting
