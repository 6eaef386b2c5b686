#pragma once

#include <cstddef>
#include <cstdint>

#include "state/status.h"
#include "topology/common/json.h"

namespace cm::usage {

// What the usage application accepts from outside, the same at the HTTP edge and in the
// processor (which sends what breaks them to the DLQ). `cmstream run` sets each with a flag
// (README "Configuration"); these are the defaults.
struct UsageLimits {
  // One event as appended to the events topic (and read from it).
  size_t max_event_bytes = 64 * 1024;
  // Events in one POST /v1/usage/events {"events": [...]}.
  size_t max_batch_events = 1000;
  // Nesting of arrays and objects in a body or record: a batch body is 3 levels before an
  // event's metadata starts ({"events":[{"metadata":{...}}]}), an appended event 1. At most
  // topology::kMaxJsonDepth (64), the bound of every other JSON reader (the RabbitMQ bridge),
  // so nothing usage accepts is refused on its way in.
  int max_json_depth = 32;
  // eventId, organizationId, eventType, userId, resourceId, resourceType, commandId and
  // Idempotency-Key.
  size_t max_id_bytes = 256;
  // A metrics query spans at most this many buckets of its granularity (100,000 minutes is
  // 69 days; months count as 28 days).
  int64_t max_query_buckets = 100'000;
  // The longest report period.
  int64_t max_report_range_ms = 400LL * 24 * 3'600'000;

  // InvalidArgument naming the field when one is not positive, or the depth is outside
  // 3..topology::kMaxJsonDepth.
  state::Status Validate() const;
};

}  // namespace cm::usage
