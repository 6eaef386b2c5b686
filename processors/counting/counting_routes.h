#pragma once

#include "processors/counting/counting_topology.h"
#include "topology/query/http_server.h"
#include "topology/query/query_router.h"
#include "topology/runtime/kafka_streams.h"

namespace cm::counting {

// GET /v1/counts/{key} -> {"key", "count"} from whichever instance owns the key; 404 when the
// key was never counted.
void AddCountingRoutes(topology::HttpServer& server, const topology::KafkaStreams& streams,
                       const topology::QueryRouter& router,
                       const CountingTopologyOptions& options = {});

}  // namespace cm::counting
