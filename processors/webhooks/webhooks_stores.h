#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "state/key_value_store.h"
#include "state/store_spec.h"
#include "state/task_state.h"
#include "topology/processor/read_only_stores.h"

namespace cm::webhooks {

// The webhooks application's stores: logged, owned by the task of the organization's
// partition. str = 4-byte big-endian length + bytes; time = ordered int64.
//
// webhooks-endpoints   'w' str org str webhookId        -> endpoint JSON: the seeds' Webhook
//                      fields, the signing secrets, stats, the circuit (circuit_breaker.h)
//                      'n' str org                      -> uint64: how many 'w' keys org has,
//                      absent when none (an event for an organization without endpoints costs
//                      point reads, not a scan)
//                      'v'                              -> the token of the processor that last
//                      counted: the 'n' keys are exact while it owns the task (a binary from
//                      before them, owning the task in between, writes 'w' keys only)
// webhooks-deliveries  'd' str org str deliveryId       -> delivery JSON: the seeds' Delivery
//                      fields, every attempt, the lease of the attempt in flight
//                      'e' str org str eventId          -> event JSON: type, time, the body
//                      sent, and its deliveries
//                      'h' str org str webhookId (max - time) str deliveryId -> status
//                      (the history of an endpoint, newest first)
// webhooks-health      'l' str org str webhookId time   -> LatencyHistogram of the hour
// webhooks-command-results                              -> topology::CommandResults
// webhooks-delivery-timers (timer store, id = deliveryId) -> when a delivery is next due (an
//                      attempt, a retry, or the end of an attempt's lease)
inline constexpr char kEndpointsStore[] = "webhooks-endpoints";
inline constexpr char kDeliveriesStore[] = "webhooks-deliveries";
inline constexpr char kHealthStore[] = "webhooks-health";
inline constexpr char kCommandResultsStore[] = "webhooks-command-results";
inline constexpr char kDeliveryTimersStore[] = "webhooks-delivery-timers";

std::vector<state::StoreSpec> WebhooksStoreSpecs();

// Read access (live in the processor and tests, committed in queries).
struct WebhooksStoreViews {
  state::ReadOnlyKeyValueStore* endpoints = nullptr;
  state::ReadOnlyKeyValueStore* deliveries = nullptr;
  state::ReadOnlyKeyValueStore* health = nullptr;
  state::ReadOnlyKeyValueStore* command_results = nullptr;

  static WebhooksStoreViews Live(state::TaskState& task);
  static WebhooksStoreViews Committed(const topology::ReadOnlyStores& stores);
  bool complete() const { return endpoints && deliveries && health && command_results; }
};

namespace keys {

std::string Endpoint(std::string_view org, std::string_view webhook);
std::string EndpointsOf(std::string_view org);
std::string AllEndpoints();
std::string EndpointCount(std::string_view org);
std::string AllEndpointCounts();
std::string EndpointCountsComplete();
std::string Delivery(std::string_view org, std::string_view delivery);
std::string Event(std::string_view org, std::string_view event);
std::string History(std::string_view org, std::string_view webhook, int64_t created_ms,
                    std::string_view delivery);
std::string HistoryOf(std::string_view org, std::string_view webhook);
std::string Health(std::string_view org, std::string_view webhook, int64_t hour_ms);
std::string HealthOf(std::string_view org, std::string_view webhook);
// The organization of an Endpoint key, or of an EndpointCount key; nullopt when it is not one.
std::optional<std::string> EndpointOrganization(std::string_view key);
std::optional<std::string> EndpointCountOrganization(std::string_view key);
// The creation time and delivery id of a History key; false when it is not one.
bool ParseHistory(std::string_view key, int64_t& created_ms, std::string& delivery);
// The time field of a Health key.
int64_t HealthHour(std::string_view key);

}  // namespace keys

}  // namespace cm::webhooks
