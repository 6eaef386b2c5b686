#pragma once

#include <functional>
#include <string>

#include "topology/processor/read_only_stores.h"
#include "topology/query/cluster_signer.h"
#include "topology/query/http_server.h"
#include "topology/query/streams_metadata.h"
#include "topology/runtime/kafka_streams.h"

namespace cm::topology {

// How a QueryRouter reaches other instances: over HTTPS when this cluster serves TLS,
// verifying their certificates against `ca_file` when one is given (else not at all).
struct QueryForwarding {
  // Signs forwarded requests with the cluster secret; null: nothing is forwarded. Not owned.
  const ClusterSigner* signer = nullptr;
  bool https = false;
  std::string ca_file;
};

// Serves a request about one key wherever the key's task runs: here from the committed stores,
// elsewhere by forwarding the request to the owning instance, and with 503 + Retry-After while
// no running instance owns it (restoring, or between owners during a rebalance). A forwarded
// copy carries the caller's principal under the cluster signature (cluster_signer.h); without
// a signer nothing is forwarded.
class QueryRouter {
 public:
  QueryRouter(const KafkaStreams& streams, const StreamsMetadata& metadata,
              QueryForwarding forwarding = {})
      : streams_(streams), metadata_(metadata), forwarding_(std::move(forwarding)) {}

  HttpResponse Route(const HttpRequest& request, const TaskId& task,
                     const std::function<HttpResponse(const ReadOnlyStores&)>& local) const;
  // Like Route, for handlers that must run on the owner but not under the task's query lock
  // (a command handler that appends and then waits for the task to apply it).
  HttpResponse RouteToOwner(const HttpRequest& request, const TaskId& task,
                            const std::function<HttpResponse()>& on_owner) const;

 private:
  HttpResponse Forward(const HttpRequest& request, const std::string& endpoint) const;
  HttpResponse Elsewhere(const HttpRequest& request, const TaskId& task) const;

  const KafkaStreams& streams_;
  const StreamsMetadata& metadata_;
  QueryForwarding forwarding_;
};

}  // namespace cm::topology
