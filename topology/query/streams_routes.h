#pragma once

#include "topology/query/http_server.h"
#include "topology/query/streams_metadata.h"
#include "topology/runtime/kafka_streams.h"

namespace cm::topology {

// The operational routes of a running instance (DESIGN.md §6), the same for every application:
//   GET /ready        200 once every task runs, else 503 with Retry-After and restore progress
//   GET /v1/topology  processors, stores, this instance's tasks and every instance's endpoint
// and the streams' metrics on GET /metrics. The references must outlive the server.
void AddStreamsRoutes(HttpServer& server, const KafkaStreams& streams,
                      const StreamsMetadata& metadata);

}  // namespace cm::topology
