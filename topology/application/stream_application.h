#pragma once

// What an application (usage, teams, webhooks, ...) hands the engine. The `cmstream` binary
// composes a list of them: their sub-topologies form one topology, their routes one HTTP API,
// their snapshot tables one Postgres schema. Adding an application is adding one of these, not
// editing the binary's commands.
#include <string>

#include "state/status.h"
#include "topology/processor/snapshot_schema.h"
#include "topology/processor/topology.h"
#include "topology/query/command_sender.h"
#include "topology/query/http_server.h"
#include "topology/query/query_router.h"
#include "topology/runtime/kafka_streams.h"

namespace cm::topology {

// What routes are given: the running streams, where to reach the owner of a key, how to
// append a command and await its result. Every reference outlives the server.
struct RouteContext {
  HttpServer& server;
  const KafkaStreams& streams;
  const QueryRouter& router;
  const CommandSender& commands;
};

class StreamApplication {
 public:
  virtual ~StreamApplication() = default;

  // Short and stable ("usage"): it names the application in logs and errors.
  virtual std::string name() const = 0;
  // Adds the application's sources, processors, stores and sinks. InvalidArgument (adding
  // nothing) when its options are inconsistent.
  virtual state::Status AddTo(TopologyBuilder& builder) const = 0;
  // Adds its HTTP routes. Called once, before the server starts.
  virtual void AddRoutes(RouteContext& context) const = 0;
  // The Postgres tables its stores are snapshotted to; none by default.
  virtual SnapshotSchema snapshot_schema() const { return {}; }
};

}  // namespace cm::topology
