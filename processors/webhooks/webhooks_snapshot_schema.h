#pragma once

#include "topology/processor/snapshot_schema.h"

namespace cm::webhooks {

// The webhooks stores as the snapshot tables of migrations/0003_webhooks_snapshot_tables.sql:
//   webhooks-endpoints   -> webhooks_endpoints (what GET /v1/webhooks/{id} shows, its stats and
//                           circuit state; never the signing secrets)
//   webhooks-deliveries  -> webhooks_deliveries (the 'd' records) and webhooks_attempts (one row
//                           per entry of a delivery's attempts); the event records and the
//                           endpoints' history index are not rows
// The health histograms, command results and delivery timers are internal and not snapshotted.
topology::SnapshotSchema WebhooksSnapshotSchema();

}  // namespace cm::webhooks
