#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace cm::webhooks {

class WebhookSender;

// processQueue's counters, summed over every task of the process (README "Webhooks", the
// /metrics table). Shared by the processors through WebhooksOptions; thread-safe.
struct WebhookQueueCounters {
  std::atomic<uint64_t> ticks{0};               // processQueue runs that looked for due work
  std::atomic<uint64_t> deliveries_created{0};  // one per (event, endpoint)
  std::atomic<uint64_t> dispatched{0};          // attempts handed to the sender
  std::atomic<uint64_t> deferred_circuit{0};    // due, but the endpoint's circuit is open
  std::atomic<uint64_t> deferred_sender{0};     // due, but the sender was full or had it
  std::atomic<uint64_t> deferred_endpoint{0};   // due, but its endpoint was at its limit
  std::atomic<int64_t> parked{0};               // waiting in memory for their endpoint's room
  std::atomic<int64_t> held{0};                 // waiting in memory for a half-open probe
  std::atomic<uint64_t> leases_expired{0};      // no outcome came back before the lease ended
  std::atomic<uint64_t> outcomes_succeeded{0};  // outcomes applied, by result
  std::atomic<uint64_t> outcomes_failed{0};
  std::atomic<uint64_t> given_up{0};  // deliveries failed for good (attempts, age, 410)
};

// Prometheus text of processQueue's counters and, when there is one, the sender's (attempts,
// refusals, queue depths and the transport's connections).
std::string RenderWebhookMetrics(const WebhookQueueCounters& queue, const WebhookSender* sender);

}  // namespace cm::webhooks
