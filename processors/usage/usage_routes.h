#pragma once

#include <functional>
#include <string>

#include "processors/usage/usage_options.h"
#include "processors/usage/usage_queries.h"
#include "state/status.h"
#include "topology/processor/read_only_stores.h"
#include "topology/query/command_sender.h"
#include "topology/query/http_server.h"
#include "topology/query/query_router.h"
#include "topology/runtime/kafka_streams.h"

namespace cm::usage {

// Appends one record to `topic` (on `partition`) and returns once Kafka acknowledged it.
using ProducerFn = std::function<state::Status(const std::string& topic, const std::string& key,
                                               const std::string& value, int32_t partition)>;

// The committed usage stores of one task (what interactive queries read).
UsageStoreViews CommittedUsageStores(const topology::ReadOnlyStores& stores);

// The usage routes of DESIGN.md §6:
//   POST /v1/usage/events                        -> 202 {recorded: true, eventId} or
//                                                   {recorded: n, eventIds} for {"events": [...]}
//   GET  /v1/usage/orgs/{org}/metrics|quota|quota/check|report|dashboard|alerts
//   PUT  /v1/usage/orgs/{org}/plan, POST /v1/usage/orgs/{org}/alerts  (commands; an
//        Idempotency-Key header is used as the command id)
//   POST /v1/usage/rollups                       -> rollupMetrics; without organizationId one
//        command per partition, summed ({rolledUp, errors, organizations, partitions, ...})
// Queries run on the task that owns the organization (forwarded when another instance owns
// it). `append_event` defaults to commands.Append. The references must outlive the server.
void AddUsageRoutes(topology::HttpServer& server, const topology::KafkaStreams& streams,
                    const topology::QueryRouter& router, const topology::CommandSender& commands,
                    ProducerFn append_event = {}, const UsageOptions& options = {});

}  // namespace cm::usage
