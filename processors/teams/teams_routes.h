#pragma once

#include <optional>
#include <string>

#include "processors/teams/invitation_token.h"
#include "processors/teams/teams_options.h"
#include "topology/query/command_sender.h"
#include "topology/query/http_server.h"
#include "topology/query/query_router.h"
#include "topology/runtime/kafka_streams.h"

namespace cm::teams {

// The teams routes of DESIGN.md §6 (README "Teams"). The organization of a team route is the
// one its team id carries; a key of another organization gets 404 as if the team did not
// exist. Mutations are teams.* commands appended to the organization's partition of
// cloudmatrix.commands and awaited (Idempotency-Key scoped as for usage); reads run on the
// owning task, forwarded when another instance owns it. The actor is the key's userId; an
// admin key may name another actorUserId in the body; a key without a user cannot mutate.
void AddTeamsRoutes(topology::HttpServer& server, const topology::KafkaStreams& streams,
                    const topology::QueryRouter& router, const topology::CommandSender& commands,
                    const TeamsOptions& options = {});

}  // namespace cm::teams
