#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "processors/webhooks/webhook_metrics.h"
#include "state/status.h"

namespace cm::webhooks {

class WebhookSender;

// The nodes the webhooks processor hangs off: usage's source of cloudmatrix.events and
// cloudmatrix.commands (one topic has one source, and usage is added first), and a source of
// its own for the team events, quota alerts and attempt outcomes. `own_source` makes the
// webhooks topology add the first one itself (webhooks alone on the test driver).
inline constexpr char kEventsAndCommandsSourceNode[] = "usage-source";

// Retries (README "Webhooks"): attempt n+1 waits base·2^(n-1), at most `max_delay_ms`, less up
// to `jitter` of it (derived from the delivery id, so a replay computes the same schedule); a
// 429 or 503 with Retry-After waits at least that long. A delivery is given up after
// `max_attempts` attempts (0: no count limit) or once it is `max_age_ms` old, whichever first.
struct RetryPolicy {
  int64_t base_delay_ms = 1000;
  int64_t max_delay_ms = 3'600'000;
  double jitter = 0.2;
  int max_attempts = 0;
  int64_t max_age_ms = 24LL * 3600 * 1000;
};

// The circuit breaker per endpoint (circuit_breaker.h).
struct CircuitPolicy {
  int failure_threshold = 5;     // consecutive failures that open a closed circuit
  int64_t cooldown_ms = 60'000;  // open -> half-open after this long
  int success_threshold = 2;     // successful probes that close a half-open circuit
};

struct WebhooksOptions {
  std::string events_topic = "cloudmatrix.events";
  std::string commands_topic = "cloudmatrix.commands";
  std::string team_events_topic = "cloudmatrix.team-events";
  std::string quota_alerts_topic = "cloudmatrix.quota-alerts";
  std::string attempts_topic = "cloudmatrix.webhook-attempts";
  std::string source_node = kEventsAndCommandsSourceNode;
  bool own_source = false;

  // null: nothing is sent (a backfill, or a topology test that drives outcomes itself); the
  // deliveries are still made and wait in state.
  std::shared_ptr<WebhookSender> sender;
  // processQueue's counters, shared by every task (and /metrics).
  std::shared_ptr<WebhookQueueCounters> counters = std::make_shared<WebhookQueueCounters>();
  bool allow_http = false;  // --webhook-allow-http: http:// URLs may be registered
  int64_t timeout_ms = 30'000;
  RetryPolicy retry;
  CircuitPolicy circuit;
  // The previous secret keeps signing this long after rotateSecret.
  int64_t secret_overlap_ms = 24LL * 3600 * 1000;
  // processQueue: how often due deliveries are handed to the sender, and at most how many.
  int64_t queue_interval_ms = 10;
  size_t queue_batch = 1024;
  // An attempt whose outcome has not come back this long after its timeout is taken as lost
  // (the instance that sent it died) and retried.
  int64_t outcome_grace_ms = 10'000;
  int64_t command_result_retention_ms = 7LL * 24 * 3600 * 1000;
  size_t max_id_bytes = 128;
  size_t max_url_bytes = 2048;
  size_t max_headers = 20;
  size_t max_header_bytes = 4096;
  size_t max_description_bytes = 1024;
  size_t max_webhooks_per_org = 100;
  size_t max_json_depth = 32;

  state::Status Validate() const {
    if (events_topic.empty() || commands_topic.empty() || team_events_topic.empty() ||
        quota_alerts_topic.empty() || attempts_topic.empty() || source_node.empty())
      return state::Status::InvalidArgument("webhooks: topics and the source node must be named");
    if (timeout_ms <= 0 || queue_interval_ms <= 0 || queue_batch == 0 || outcome_grace_ms <= 0 ||
        secret_overlap_ms < 0 || command_result_retention_ms <= 0)
      return state::Status::InvalidArgument("webhooks: times and batch sizes must be positive");
    if (retry.base_delay_ms <= 0 || retry.max_delay_ms < retry.base_delay_ms || retry.jitter < 0 ||
        retry.jitter >= 1 || retry.max_attempts < 0 || retry.max_age_ms <= 0)
      return state::Status::InvalidArgument(
          "webhooks: retry delays must be positive, the maximum at least the base, jitter in "
          "[0, 1)");
    if (circuit.failure_threshold < 1 || circuit.success_threshold < 1 || circuit.cooldown_ms <= 0)
      return state::Status::InvalidArgument(
          "webhooks: circuit thresholds must be at least 1 and the cool-down positive");
    return state::Status::OK();
  }
};

}  // namespace cm::webhooks
