#pragma once

#include <string>

#include "processors/auth/api_key.h"
#include "state/status.h"
#include "topology/application/stream_application.h"
#include "topology/query/command_sender.h"
#include "topology/runtime/kafka_streams.h"

namespace cm::auth {

// API keys (issue 13) as one application of `cmstream run --topology cloudmatrix`: the
// api-keys global store over cloudmatrix.api-keys, the authenticator every route passes
// through (api_key_authenticator.h) and the admin routes
//   POST   /v1/admin/api-keys       {organizationId?, scopes, userId?, name?} -> 201 with the key
//   GET    /v1/admin/api-keys       ?organizationId= -> {apiKeys: [...]} (never a secret)
//   DELETE /v1/admin/api-keys/{id}  -> the revoked key
// A write answers once this instance's global store holds it; every other instance follows
// within its poll (well under a second).
class AuthApplication final : public topology::StreamApplication {
 public:
  std::string name() const override { return "auth"; }
  state::Status AddTo(topology::TopologyBuilder& builder) const override;
  void AddRoutes(topology::RouteContext& context) const override;
};

// Writes `record` to the api-keys topic and waits (up to `timeout`) until `streams`' global
// store shows it.
state::Status WriteApiKey(const topology::KafkaStreams& streams,
                          const topology::CommandSender& commands, const ApiKeyRecord& record,
                          std::chrono::milliseconds timeout);
// CM_ADMIN_KEY: once the global store is restored, makes sure `token` is an admin key
// (created at `now_ms`). A key id that is already there (revoked or not) is left as it is, so
// a revoked admin key stays revoked across restarts. Instances started together may each write
// it, with their own creation times: whichever record the store ends with is the key.
state::Status EnsureAdminKey(const topology::KafkaStreams& streams,
                             const topology::CommandSender& commands, const std::string& token,
                             int64_t now_ms, std::chrono::milliseconds timeout);

}  // namespace cm::auth
