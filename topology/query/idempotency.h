#pragma once

#include <string>
#include <string_view>

#include "state/status.h"
#include "topology/query/http_server.h"

namespace cm::topology {

// What identifies a command sent over HTTP, as Stripe treats Idempotency-Key: the key is
// remembered per (principal, organization, route), so it never returns what another tenant or
// another route recorded under the same key, and bound to a hash of the request, so the same
// key with another request is refused (422 idempotency_key_reused) instead of answered with
// the first request's result.
struct CommandIdentity {
  std::string command_id;    // derived from the key, or a fresh random id without one
  std::string request_hash;  // hex SHA-256 of method, path and body
};

// InvalidArgument when the key is longer than 256 bytes.
state::Result<CommandIdentity> IdentifyCommand(const HttpRequest& request,
                                               std::string_view organization);
// The answer to a command whose stored result was recorded for another request hash.
HttpResponse IdempotencyKeyReused();
// A random RFC 4122 version-4 id.
std::string RandomUuid();

}  // namespace cm::topology
