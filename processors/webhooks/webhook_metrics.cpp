#include "processors/webhooks/webhook_metrics.h"

#include "processors/webhooks/webhook_sender.h"
#include "topology/common/prometheus_text.h"

namespace cm::webhooks {

std::string RenderWebhookMetrics(const WebhookQueueCounters& queue, const WebhookSender* sender) {
  topology::PrometheusText out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out.Family(name, type, help).Sample(name, value);
  };
  metric("cmstream_webhook_queue_ticks_total", "counter",
         "processQueue runs that looked for due deliveries", queue.ticks.load());
  metric("cmstream_webhook_deliveries_created_total", "counter",
         "Deliveries made by fan-out, one per event and matching endpoint",
         queue.deliveries_created.load());
  metric("cmstream_webhook_dispatched_total", "counter",
         "Attempts processQueue handed to the sender", queue.dispatched.load());
  out.Family("cmstream_webhook_deferred_total", "counter",
             "Due deliveries processQueue left for later, by reason")
      .Sample("cmstream_webhook_deferred_total", {{"reason", "circuit_open"}},
              queue.deferred_circuit.load())
      .Sample("cmstream_webhook_deferred_total", {{"reason", "sender_busy"}},
              queue.deferred_sender.load())
      .Sample("cmstream_webhook_deferred_total", {{"reason", "endpoint_busy"}},
              queue.deferred_endpoint.load());
  metric("cmstream_webhook_parked_deliveries", "gauge",
         "Due deliveries waiting in memory for their endpoint's per-endpoint limit",
         queue.parked.load());
  metric("cmstream_webhook_held_deliveries", "gauge",
         "Due deliveries waiting in memory for the outcome of their endpoint's half-open probe",
         queue.held.load());
  metric("cmstream_webhook_leases_expired_total", "counter",
         "Attempts whose outcome did not come back before their lease ended",
         queue.leases_expired.load());
  out.Family("cmstream_webhook_outcomes_applied_total", "counter",
             "Attempt outcomes applied to their delivery, by result")
      .Sample("cmstream_webhook_outcomes_applied_total", {{"result", "success"}},
              queue.outcomes_succeeded.load())
      .Sample("cmstream_webhook_outcomes_applied_total", {{"result", "failure"}},
              queue.outcomes_failed.load());
  metric("cmstream_webhook_deliveries_given_up_total", "counter",
         "Deliveries failed for good (maximum attempts or age, 410 Gone)", queue.given_up.load());
  if (sender == nullptr) return out.str();

  const WebhookSender::Counters c = sender->counters();
  metric("cmstream_webhook_sender_submitted_total", "counter",
         "Attempts the sender accepted (attemptDelivery)", c.submitted);
  out.Family("cmstream_webhook_sender_refused_total", "counter",
             "Attempts the sender refused, by reason (the delivery is offered again)")
      .Sample("cmstream_webhook_sender_refused_total", {{"reason", "busy"}}, c.refused_busy)
      .Sample("cmstream_webhook_sender_refused_total", {{"reason", "endpoint_busy"}},
              c.refused_endpoint_busy)
      .Sample("cmstream_webhook_sender_refused_total", {{"reason", "full"}}, c.refused_full);
  out.Family("cmstream_webhook_sender_attempts_total", "counter",
             "Attempts sent, by result (2xx is success)")
      .Sample("cmstream_webhook_sender_attempts_total", {{"result", "success"}}, c.succeeded)
      .Sample("cmstream_webhook_sender_attempts_total", {{"result", "failure"}}, c.failed);
  metric("cmstream_webhook_sender_outcome_append_failures_total", "counter",
         "Outcomes that could not be appended to the attempts topic (retried at lease end)",
         c.outcome_append_failures);
  out.Family("cmstream_webhook_sender_jobs", "gauge", "Attempts in the sender, by stage")
      .Sample("cmstream_webhook_sender_jobs", {{"stage", "queued"}}, c.queued)
      .Sample("cmstream_webhook_sender_jobs", {{"stage", "sending"}}, c.in_flight)
      .Sample("cmstream_webhook_sender_jobs", {{"stage", "appending"}}, c.appending);
  return out.str() + sender->transport().RenderMetrics();
}

}  // namespace cm::webhooks
