#pragma once

#include "processors/webhooks/webhooks_options.h"
#include "topology/query/command_sender.h"
#include "topology/query/http_server.h"
#include "topology/query/query_router.h"
#include "topology/runtime/kafka_streams.h"

namespace cm::webhooks {

// The webhook routes of DESIGN.md §6 (README "Webhooks"): commands appended to
// cloudmatrix.commands and awaited, reads answered from the owning task's committed stores.
// Reads need `webhooks:read`, the rest `webhooks:write`; ids carry their organization, so a key
// of another organization gets 404.
void AddWebhooksRoutes(topology::HttpServer& server, const topology::KafkaStreams& streams,
                       const topology::QueryRouter& router, const topology::CommandSender& commands,
                       const WebhooksOptions& options);

}  // namespace cm::webhooks
