#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "processors/usage/metric_catalog.h"
#include "state/key_value_store.h"
#include "topology/processor/command_results.h"

namespace cm::usage {

// Usage commands on cloudmatrix.commands (key = organizationId). Every command is a JSON
// object {"type", "commandId", "issuedAt", "organizationId", ...fields}; types that do not
// start with "usage." belong to other applications and are ignored here.
//
//   usage.set_plan          {"plan": "pro", "billingAnchorDay": 1..31 (optional)}
//                           PUT /v1/usage/orgs/{org}/plan -> 200 {organizationId, plan,
//                           previousPlan, billingAnchorDay, effectiveFrom, periodStart, periodEnd}
//   usage.subscribe_alerts  {"metricType", "threshold": 80 | "thresholds": [50, 80, 100],
//                            "notificationChannels": ["email", "webhook", "in_app"]}
//                           POST /v1/usage/orgs/{org}/alerts -> 201 {subscriptionId, ...,
//                           created: true}, or 200 with created: false for an identical one
//   usage.rollup            {"metricType": name | "*", "cutoffTime": ISO-8601 | epoch ms,
//                            "granularities": ["minute", "hour", "day"] (optional; default:
//                            the granularities the retention policy does not keep forever)}
//                           POST /v1/usage/rollups -> 200 {rolledUp, errors, metricTypes,
//                           granularities, cutoffTime, organizations}.
//                           With organizationId: that organization only. Without: every
//                           organization of the task that reads the record, so the HTTP layer
//                           sends one copy per partition and sums rolledUp / errors.
//
// The effective time of a command is its record's Kafka timestamp (set when HTTP appended it).
// The outcome is recorded in usage-command-results (topology::CommandResults: status, body or
// {"error": {"code", "message", "details"}}, requestHash, appliedAt; kept for
// command_result_retention_ms) and a command whose commandId has a result is not applied again. A
// command without a commandId or that is not JSON goes to the DLQ (there is nowhere to put its
// result).
inline constexpr char kSetPlanCommand[] = "usage.set_plan";
inline constexpr char kSubscribeAlertsCommand[] = "usage.subscribe_alerts";
inline constexpr char kRollupCommand[] = "usage.rollup";

using topology::ErrorBody;

// The checks of a command's fields that need no state. The HTTP routes run them before
// appending, so an invalid command is refused without a Kafka round trip; the processor runs
// them again, since commands may reach the topic from elsewhere. nullopt when the fields are
// valid, else the 400 error body.
std::optional<nlohmann::json> CheckSetPlan(const Catalog& catalog, const nlohmann::json& fields);
std::optional<nlohmann::json> CheckSubscribeAlerts(const Catalog& catalog,
                                                   const nlohmann::json& fields);

// The stored result of a command, or nullopt while it has not been applied (what the HTTP
// layer polls after appending a command).

}  // namespace cm::usage
