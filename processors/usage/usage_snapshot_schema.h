#pragma once

#include "processors/usage/metric_catalog.h"
#include "topology/processor/snapshot_schema.h"

namespace cm::usage {

// The usage stores as the snapshot tables of migrations/0001_snapshot_tables.sql:
//   usage-aggregates -> usage_aggregates (value = what GET .../metrics reports for the bucket)
//   usage-totals     -> usage_totals
//   usage-orgs       -> usage_org_settings
//   usage-alerts     -> usage_alert_subscriptions and usage_fired_alerts
// usage-dedup and usage-command-results are internal and not snapshotted. Aggregates of a
// metric the catalog does not know, and entries that do not decode, are skipped.
topology::SnapshotSchema UsageSnapshotSchema(const Catalog& catalog);

}  // namespace cm::usage
