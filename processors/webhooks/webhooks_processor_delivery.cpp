// The delivery half of the webhooks processor: fan-out, processQueue, attempt outcomes.
#include <algorithm>
#include <iterator>
#include <set>

#include "processors/webhooks/circuit_breaker.h"
#include "processors/webhooks/event_catalog.h"
#include "processors/webhooks/latency_histogram.h"
#include "processors/webhooks/webhook_sender.h"
#include "processors/webhooks/webhooks_processor.h"
#include "processors/webhooks/webhooks_stores.h"
#include "topology/common/backoff.h"
#include "topology/common/entity_id.h"
#include "topology/common/json.h"
#include "topology/common/timestamp.h"

namespace cm::webhooks {

using nlohmann::json;
using topology::FormatTimestamp;
using topology::Record;

namespace {

constexpr int64_t kHourMs = 3'600'000;
// A delivery keeps its latest attempts; older ones are summarized by attemptNumber and stats.
constexpr size_t kMaxAttemptsKept = 50;
// Parked deliveries a task keeps in memory (about 200 bytes each, so at most ~50 MB); past
// it, a busy endpoint's due deliveries are looked at again after kRecheckMs. Large enough for
// a burst of 80,000 deliveries (ops/bench/webhooks' direct run) not to overflow: each overflowed
// delivery is read and rescheduled every second. Deliveries held behind a half-open circuit's
// probe have the same bound; past it they wait for their stored timer.
constexpr size_t kMaxParked = 262'144;
// How soon a delivery held back by this process (parking is full, the task lags its attempts)
// is looked at again: not every tick, as each look that defers it is a timer store write.
constexpr int64_t kRecheckMs = 1'000;
// A tick hands its attempts to the sender this many at a time: one lock for them, not one per
// attempt, while the sender's threads start on the first ones and free their endpoints' room
// before the tick has staged the rest (a whole tick at once capped each endpoint at its limit
// per tick).
constexpr size_t kHandOverEvery = 32;

// The error class of an attempt for the breakdown; empty for a success.
std::string ErrorClass(const DeliveryResponse& r) {
  if (r.failure != TransportFailure::kNone) return std::string(TransportFailureName(r.failure));
  if (r.status >= 200 && r.status < 300) return "";
  if (r.status >= 300 && r.status < 400) return "redirect";
  if (r.status == 410) return "gone";
  if (r.status == 429) return "rate_limited";
  if (r.status >= 400 && r.status < 500) return "http_4xx";
  if (r.status >= 500 && r.status < 600) return "http_5xx";
  return "http_other";
}

}  // namespace

void WebhooksProcessor::ProcessEvent(const Record& record) {
  // Most organizations have no endpoint: two point reads (the counts' mark, the organization's
  // count) decide, before the event is parsed.
  if (EndpointCount(record.key) == 0) return;
  const std::vector<json> endpoints = Endpoints(record.key);
  if (endpoints.empty()) return;
  auto parsed = topology::ParseJson(record.value, static_cast<int>(options_->max_json_depth));
  if (!parsed.ok() || !parsed->is_object()) return;  // the usage processor reports bad events
  const json& j = *parsed;
  Event event;
  event.org = record.key;
  event.id = topology::StringField(j, "eventId");
  if (event.id.empty()) event.id = topology::StringField(j, "id");  // a CloudEvents envelope
  event.type = topology::StringField(j, "eventType");
  if (event.type.empty()) event.type = topology::StringField(j, "type");
  if (event.id.empty() || event.type.empty() || event.id.size() > 256 || event.type.size() > 128)
    return;
  event.occurred_at = topology::StringField(j, "occurredAt");
  if (event.occurred_at.empty()) event.occurred_at = topology::StringField(j, "time");
  if (event.occurred_at.empty()) event.occurred_at = FormatTimestamp(record.timestamp_ms);
  // Team events and CloudEvents carry their payload in data; a usage event is its own payload.
  event.data = j.contains("data") && j["data"].is_object() ? j["data"] : j;
  FanOut(event, endpoints, record.timestamp_ms);
}

std::vector<json> WebhooksProcessor::Endpoints(const std::string& org) {
  std::vector<json> endpoints;
  endpoints_->PrefixScan(keys::EndpointsOf(org), [&](std::string_view key, std::string_view v) {
    if (const json* e = ParsedEndpoint(key, v)) endpoints.push_back(*e);
    return true;
  });
  return endpoints;
}

std::vector<std::string> WebhooksProcessor::FanOut(const Event& event,
                                                   const std::vector<json>& endpoints, int64_t now,
                                                   const std::optional<std::string>& only) {
  std::vector<const json*> targets;
  for (const json& e : endpoints) {
    if (only ? e.value("id", "") == *only
             : e.value("active", true) && Matches(e.value("events", json()), event.type))
      targets.push_back(&e);
  }
  std::vector<std::string> webhooks;
  if (targets.empty()) return webhooks;
  auto stored = deliveries_->Get(keys::Event(event.org, event.id));
  json ev = stored ? json::parse(*stored, nullptr, false) : json();
  // The deliveries made for the event before (it came again): every delivery is listed in its
  // event's record, written with it, so a new event needs no read per endpoint. A record that
  // cannot be read lists nothing: then each delivery is looked up.
  const bool listed = !stored || ev.is_object();
  std::set<std::string, std::less<>> made;
  if (ev.is_object() && ev.contains("deliveries") && ev["deliveries"].is_array()) {
    for (const json& id : ev["deliveries"])
      if (id.is_string()) made.insert(id.get<std::string>());
  }
  if (!ev.is_object()) {
    ev = {{"eventId", event.id},         {"eventType", event.type},
          {"organizationId", event.org}, {"occurredAt", event.occurred_at},
          {"data", event.data},          {"deliveries", json::array()}};
  }
  for (const json* e : targets) {
    const std::string webhook = e->value("id", "");
    const std::string id = topology::EntityIdFor(event.org, 'd', event.id + '\0' + webhook);
    if (listed ? made.contains(id) : deliveries_->Get(keys::Delivery(event.org, id)).has_value())
      continue;
    made.insert(id);
    // Behind an open circuit the delivery is first due when the circuit would admit it, not
    // at once: a dispatch now would only read it back, find the circuit open and reschedule
    // it, for every event while the endpoint is down. Asked of a copy: nothing is admitted
    // here.
    CircuitBreaker circuit = CircuitBreaker::FromJson(e->value("circuit", json()));
    const CircuitBreaker::Admission admission = circuit.Admit(options_->circuit, id, now);
    const int64_t due = admission.send ? now : HoldForCircuit(webhook, id, admission, now);
    const std::string at = FormatTimestamp(now);
    json d = {{"id", id},
              {"webhookId", webhook},
              {"eventId", event.id},
              {"eventType", ev.value("eventType", event.type)},
              {"organizationId", event.org},
              {"status", "pending"},
              {"attemptNumber", 0},
              {"scheduledAt", at},
              {"scheduledAtMs", now},
              {"createdAt", at},
              {"createdAtMs", now},
              {"attempts", json::array()}};
    SaveDelivery(d);
    timers_->Schedule(id, due, "");
    ev["deliveries"].push_back(id);
    webhooks.push_back(webhook);
  }
  options_->counters->deliveries_created += webhooks.size();
  deliveries_->Put(keys::Event(event.org, event.id), ev.dump());
  return webhooks;
}

std::string WebhooksProcessor::Body(const json& d, const json& event) const {
  // The same bytes on every attempt: receivers deduplicate on the id (also webhook-id).
  return json({{"id", d.value("id", "")},
               {"deliveryId", d.value("id", "")},
               {"type", event.value("eventType", "")},
               {"eventId", event.value("eventId", "")},
               {"organizationId", event.value("organizationId", "")},
               {"webhookId", d.value("webhookId", "")},
               {"timestamp", event.value("occurredAt", "")},
               {"data", event.value("data", json::object())}})
      .dump();
}

void WebhooksProcessor::ProcessQueue(int64_t now) {
  results_->ExpireBefore(now - options_->command_result_retention_ms);
  // Without a sender (a backfill, a test driving outcomes) deliveries wait in state; while a
  // replay is pending, state does not yet know what was delivered before the reset.
  if (!options_->sender || context_->ReplayPending()) return;
  // No more than the sender can take: the rest stay due for the next tick.
  ++options_->counters->ticks;
  DispatchTick tick{options_->sender->OpenBatch(options_->queue_batch), {}};
  try {
    size_t room = tick.batch.room();
    room -= DispatchParked(now, room, tick);
    if (room > 0) {
      for (const auto& timer : timers_->PopDue(now, room)) Dispatch(timer.id, now, tick);
    }
  } catch (...) {
    // The punctuation fails but its writes stay: the attempts staged so far are recorded as
    // sent, so they go, or each would wait out its lease and count as a lost attempt.
    HandOver(tick, now);
    throw;
  }
  HandOver(tick, now);
}

void WebhooksProcessor::HandOver(DispatchTick& tick, int64_t now) {
  if (tick.staged.empty()) return;
  const std::vector<WebhookSender::Handover> handed =
      options_->sender->Submit(std::move(tick.batch));
  for (size_t i = 0; i < tick.staged.size(); ++i) {
    if (handed[i] == WebhookSender::Handover::kAccepted) {
      ++options_->counters->dispatched;
      continue;
    }
    // Refused at the hand-over (another thread took the room, the last attempt is still in
    // the sender): the delivery is put back as it was, and asks again.
    const StagedAttempt& a = tick.staged[i];
    auto org = topology::OrganizationOfEntityId(a.delivery_id, 'd');
    if (!org) continue;
    if (auto d = LoadDelivery(*org, a.delivery_id)) {
      for (const auto& [field, value] : a.before.items()) {
        if (value.is_null()) {
          d->erase(field);
        } else {
          (*d)[field] = value;
        }
      }
      SaveDelivery(*d);
    }
    auto endpoint = LoadEndpoint(*org, a.webhook);
    Requeue(endpoint ? &*endpoint : nullptr, a.webhook, a.delivery_id,
            handed[i] == WebhookSender::Handover::kEndpointBusy, now);
  }
  tick.staged.clear();
}

void WebhooksProcessor::Park(const std::string& webhook, const std::string& delivery_id,
                             int64_t now) {
  ++options_->counters->deferred_endpoint;
  const bool parked = ParkInMemory(webhook, delivery_id);
  timers_->Schedule(delivery_id,
                    now + (parked ? options_->timeout_ms + options_->outcome_grace_ms : kRecheckMs),
                    "");
}

int64_t WebhooksProcessor::HoldForCircuit(const std::string& webhook,
                                          const std::string& delivery_id,
                                          const CircuitBreaker::Admission& admission, int64_t now) {
  if (admission.retry_at_ms) return *admission.retry_at_ms;
  if (held_count_ < kMaxParked) {
    held_[webhook].push_back(delivery_id);
    ++held_count_;
    ++options_->counters->held;
  }
  // The probe's outcome is in by the end of its lease, which began no later than now.
  return now + options_->timeout_ms + options_->outcome_grace_ms;
}

bool WebhooksProcessor::ParkInMemory(const std::string& webhook, const std::string& delivery_id) {
  if (parked_ids_.contains(delivery_id)) return true;
  if (parked_ids_.size() >= kMaxParked) return false;
  parked_ids_.insert(delivery_id);
  parked_[webhook].push_back(delivery_id);
  ++options_->counters->parked;
  return true;
}

void WebhooksProcessor::Wake(const std::string& webhook) {
  for (const std::string& id : Forget(webhook)) ParkInMemory(webhook, id);
}

void WebhooksProcessor::WakeNext(const std::string& webhook) {
  for (const std::string& id : Forget(webhook, 1)) ParkInMemory(webhook, id);
}

void WebhooksProcessor::WakeNextIfNoProbe(const std::string& webhook) {
  if (!held_.contains(webhook)) return;
  auto org = topology::OrganizationOfEntityId(webhook, 'w');
  auto endpoint = org ? LoadEndpoint(*org, webhook) : std::nullopt;
  if (!endpoint) {
    Wake(webhook);  // deleted: each is cancelled when it is dispatched
    return;
  }
  const CircuitBreaker circuit = CircuitBreaker::FromJson(endpoint->value("circuit", json()));
  if (circuit.state() == CircuitBreaker::State::kHalfOpen && circuit.probe().empty())
    WakeNext(webhook);
}

std::vector<std::string> WebhooksProcessor::Forget(const std::string& webhook, size_t at_most) {
  const auto it = held_.find(webhook);
  if (it == held_.end()) return {};
  std::deque<std::string>& held = it->second;
  const auto end = held.begin() + static_cast<std::ptrdiff_t>(std::min(at_most, held.size()));
  std::vector<std::string> ids(std::make_move_iterator(held.begin()), std::make_move_iterator(end));
  held.erase(held.begin(), end);
  if (held.empty()) held_.erase(it);
  held_count_ -= ids.size();
  options_->counters->held -= static_cast<int64_t>(ids.size());
  return ids;
}

size_t WebhooksProcessor::DispatchParked(int64_t now, size_t room, DispatchTick& tick) {
  size_t taken = 0;
  for (auto it = parked_.begin(); it != parked_.end() && taken < room;) {
    std::deque<std::string>& waiting = it->second;
    while (!waiting.empty() && taken < room && tick.batch.EndpointHasRoom(it->first)) {
      const std::string id = std::move(waiting.front());
      waiting.pop_front();
      parked_ids_.erase(id);
      --options_->counters->parked;
      ++taken;
      Dispatch(id, now, tick);  // may park it again, behind the others
      WakeNextIfNoProbe(it->first);
    }
    it = waiting.empty() ? parked_.erase(it) : std::next(it);
  }
  return taken;
}

void WebhooksProcessor::Dispatch(const std::string& delivery_id, int64_t now, DispatchTick& tick) {
  auto org = topology::OrganizationOfEntityId(delivery_id, 'd');
  if (!org) return;
  auto delivery = LoadDelivery(*org, delivery_id);
  if (!delivery) return;
  json& d = *delivery;
  const std::string status = d.value("status", "");
  const std::string webhook = d.value("webhookId", "");
  auto endpoint = LoadEndpoint(*org, webhook);
  if (status == "in_progress") {
    const int64_t lease = d.value("leaseUntilMs", int64_t{0});
    if (now < lease) {
      timers_->Schedule(delivery_id, lease, "");
      return;
    }
    // Outcomes appended before the lease ended may not be read yet when the task lags: only a
    // task that has read its attempts partition to the end knows the outcome never came.
    if (!context_->CaughtUp(options_->attempts_topic)) {
      timers_->Schedule(delivery_id, now + kRecheckMs, "");
      return;
    }
    // The outcome never came back (the instance that sent it stopped): a failed attempt.
    DeliveryResponse lost;
    lost.failure = TransportFailure::kConnection;
    lost.error = "no outcome came back before the attempt's lease ended";
    ++options_->counters->leases_expired;
    AttemptOutcome o{*org, webhook, delivery_id, d.value("attemptNumber", 0), now, lost};
    ApplyOutcome(o, now);
    return;
  }
  if (status != "pending") return;
  if (!endpoint || !endpoint->value("active", true)) {
    if (Cancel(d, endpoint ? "the webhook is disabled" : "the webhook was deleted", now))
      SaveDelivery(d);
    return;
  }
  const int64_t base = d.value("retryBaseMs", d.value("createdAtMs", now));
  if (now - base >= options_->retry.max_age_ms) {
    d["status"] = "failed";
    d["errorMessage"] = "given up: not delivered within the maximum age";
    ++options_->counters->given_up;
    d["finishedAt"] = FormatTimestamp(now);
    SaveDelivery(d);
    return;
  }
  if (!tick.batch.EndpointHasRoom(webhook)) {
    Park(webhook, delivery_id, now);
    return;
  }
  CircuitBreaker circuit = CircuitBreaker::FromJson(endpoint->value("circuit", json()));
  const CircuitBreaker before = circuit;
  auto admission = circuit.Admit(options_->circuit, delivery_id, now);
  if (!admission.send) {
    ++options_->counters->deferred_circuit;
    // Waits; does not fail.
    timers_->Schedule(delivery_id, HoldForCircuit(webhook, delivery_id, admission, now), "");
    return;
  }
  auto stored_event = deliveries_->Get(keys::Event(*org, d.value("eventId", "")));
  json event = stored_event ? json::parse(*stored_event, nullptr, false) : json();
  if (!event.is_object()) {
    if (Cancel(d, "the event's payload is missing", now)) SaveDelivery(d);
    return;
  }
  DeliveryJob job;
  job.organization = *org;
  job.webhook_id = webhook;
  job.delivery_id = delivery_id;
  job.attempt = d.value("attemptNumber", 0) + 1;
  job.url = endpoint->value("url", "");
  const json headers = endpoint->value("headers", json::object());  // outlives the loop
  for (const auto& [name, value] : headers.items()) {
    if (value.is_string()) job.headers.emplace_back(name, value.get<std::string>());
  }
  job.body = Body(d, event);
  for (const auto& s : endpoint->value("secrets", json::array())) {
    if (!s.is_object()) continue;
    const json expires = s.value("expiresAtMs", json());
    if (expires.is_null() || (expires.is_number_integer() && expires.get<int64_t>() > now))
      job.secrets.push_back(s.value("secret", ""));
  }
  job.timeout_ms = options_->timeout_ms;
  const WebhookSender::Handover handover = tick.batch.Add(std::move(job));
  switch (handover) {
    case WebhookSender::Handover::kAccepted:
      break;
    case WebhookSender::Handover::kEndpointBusy:
    case WebhookSender::Handover::kBusy:
    case WebhookSender::Handover::kFull:
    case WebhookSender::Handover::kStopped:
      // The circuit as admitted above was not saved: nothing to give back.
      Requeue(nullptr, webhook, delivery_id, handover == WebhookSender::Handover::kEndpointBusy,
              now);
      return;
  }
  // Saved now, so the tick's next delivery to this endpoint sees the probe taken.
  if (circuit != before) {
    (*endpoint)["circuit"] = circuit.ToJson();
    SaveEndpoint(*endpoint);
  }
  tick.staged.push_back({delivery_id, webhook, MarkSent(d, now)});
  if (tick.staged.size() >= kHandOverEvery) {
    const size_t left = tick.batch.room();
    HandOver(tick, now);
    tick.batch = options_->sender->OpenBatch(left);
  }
}

json WebhooksProcessor::MarkSent(json& d, int64_t now) {
  json before = json::object();
  for (const char* field :
       {"status", "attemptNumber", "attemptedAt", "leaseUntilMs", "nextRetryAt"})
    before[field] = d.contains(field) ? d[field] : json();
  d["status"] = "in_progress";
  d["attemptNumber"] = d.value("attemptNumber", 0) + 1;
  d["attemptedAt"] = FormatTimestamp(now);
  const int64_t lease = now + options_->timeout_ms + options_->outcome_grace_ms;
  d["leaseUntilMs"] = lease;
  d.erase("nextRetryAt");
  SaveDelivery(d);
  timers_->Schedule(d.value("id", ""), lease, "");
  return before;
}

void WebhooksProcessor::Requeue(json* endpoint, const std::string& webhook,
                                const std::string& delivery_id, bool endpoint_busy, int64_t now) {
  if (endpoint) {
    CircuitBreaker circuit = CircuitBreaker::FromJson(endpoint->value("circuit", json()));
    const CircuitBreaker before = circuit;
    circuit.Release(delivery_id);
    if (circuit != before) {
      (*endpoint)["circuit"] = circuit.ToJson();
      SaveEndpoint(*endpoint);
      Wake(webhook);  // the next probe may be one of those held behind this one
    }
  }
  if (endpoint_busy) {
    Park(webhook, delivery_id, now);
  } else {
    ++options_->counters->deferred_sender;
    timers_->Schedule(delivery_id, now + options_->queue_interval_ms, "");
  }
}

void WebhooksProcessor::ApplyOutcome(const AttemptOutcome& o, int64_t now) {
  auto delivery = LoadDelivery(o.organization, o.delivery_id);
  if (!delivery) return;
  json& d = *delivery;
  const std::string status = d.value("status", "");
  if (context_->Replaying() && (status == "pending" || status == "in_progress") &&
      o.attempt > d.value("attemptNumber", 0)) {
    // A replay after a reset: the attempt was made before it, and its outcome says so.
    d["status"] = "in_progress";
    d["attemptNumber"] = o.attempt;
  }
  // Only the outcome of the attempt in flight counts; a late or repeated one changes nothing.
  if (d.value("status", "") != "in_progress" || d.value("attemptNumber", 0) != o.attempt) return;
  const DeliveryResponse& r = o.response;
  const std::string error_class = ErrorClass(r);
  const bool success = error_class.empty();
  ++(success ? options_->counters->outcomes_succeeded : options_->counters->outcomes_failed);
  const int64_t attempted = o.attempted_at_ms > 0 ? o.attempted_at_ms : now;
  json attempt = {{"attemptNumber", o.attempt},
                  {"attemptedAt", FormatTimestamp(attempted)},
                  {"responseTimeMs", r.response_time_ms},
                  {"success", success}};
  if (r.status != 0) attempt["responseStatus"] = r.status;
  if (!success) {
    attempt["errorClass"] = error_class;
    attempt["errorMessage"] =
        r.error.empty() ? "the endpoint answered " + std::to_string(r.status) : r.error;
  }
  json& attempts = d["attempts"];
  if (!attempts.is_array()) attempts = json::array();
  attempts.push_back(attempt);
  if (attempts.size() > kMaxAttemptsKept) attempts.erase(attempts.begin());
  d["attemptedAt"] = attempt["attemptedAt"];
  d["responseTimeMs"] = r.response_time_ms;
  if (r.status != 0) {
    d["responseStatus"] = r.status;
  } else {
    d.erase("responseStatus");
  }
  d.erase("leaseUntilMs");

  auto endpoint = LoadEndpoint(o.organization, o.webhook_id);
  if (endpoint) {
    json& e = *endpoint;
    json& stats = e["stats"];
    const int64_t total = stats.value("totalDeliveries", int64_t{0}) + 1;
    const int64_t sum = e.value("responseTimeSumMs", int64_t{0}) + r.response_time_ms;
    stats["totalDeliveries"] = total;
    stats[success ? "successfulDeliveries" : "failedDeliveries"] =
        stats.value(success ? "successfulDeliveries" : "failedDeliveries", int64_t{0}) + 1;
    e["responseTimeSumMs"] = sum;
    stats["averageResponseTimeMs"] = static_cast<double>(sum) / static_cast<double>(total);
    stats["lastDeliveryAt"] = FormatTimestamp(attempted);
    stats["lastDeliveryStatus"] = success ? "succeeded" : "failed";
    CircuitBreaker circuit = CircuitBreaker::FromJson(e.value("circuit", json()));
    const bool was_probe =
        circuit.state() == CircuitBreaker::State::kHalfOpen && circuit.probe() == o.delivery_id;
    if (success) {
      circuit.OnSuccess(options_->circuit, o.delivery_id, now);
    } else {
      circuit.OnFailure(options_->circuit, o.delivery_id, now);
    }
    e["circuit"] = circuit.ToJson();
    // The deliveries held behind the probe go: the oldest as the next probe, or all once it
    // closed. A failed probe reopened the circuit: their timers bring them back to wait for the
    // cool-down.
    if (was_probe) {
      switch (circuit.state()) {
        case CircuitBreaker::State::kOpen:
          Forget(o.webhook_id);
          break;
        case CircuitBreaker::State::kHalfOpen:
          WakeNext(o.webhook_id);
          break;
        case CircuitBreaker::State::kClosed:
          Wake(o.webhook_id);
          break;
      }
    }
    if (r.failure == TransportFailure::kNone && r.status == 410) {
      e["active"] = false;  // 410 Gone: the receiver asks for no more deliveries
      e["disabledReason"] = "the endpoint answered 410 Gone at " + FormatTimestamp(attempted);
    }
    SaveEndpoint(e);
    // The hour's latency histogram, for getHealthMetrics.
    const int64_t hour = attempted - attempted % kHourMs;
    const std::string key = keys::Health(o.organization, o.webhook_id, hour);
    auto stored = health_->Get(key);
    LatencyHistogram h =
        LatencyHistogram::FromJson(stored ? json::parse(*stored, nullptr, false) : json());
    h.Add(r.response_time_ms, success, error_class);
    health_->Put(key, h.ToJson().dump());
  }

  if (success) {
    d["status"] = "succeeded";
    d.erase("errorMessage");
    d.erase("errorClass");
    d["finishedAt"] = FormatTimestamp(now);
    timers_->Cancel(o.delivery_id);
  } else {
    d["errorClass"] = error_class;
    d["errorMessage"] = attempt["errorMessage"];
    if (!endpoint) {
      Cancel(d, "the webhook was deleted", now);
    } else if (error_class == "gone") {
      ++options_->counters->given_up;
      d["status"] = "failed";
      d["finishedAt"] = FormatTimestamp(now);
      timers_->Cancel(o.delivery_id);
    } else {
      std::optional<int64_t> retry_after;
      if (r.status == 429 || r.status == 503) retry_after = r.retry_after_ms;
      ScheduleRetryOrGiveUp(d, error_class, retry_after, now);
    }
  }
  SaveDelivery(d);
}

void WebhooksProcessor::ScheduleRetryOrGiveUp(json& d, const std::string& error_class,
                                              std::optional<int64_t> retry_after_ms, int64_t now) {
  const RetryPolicy& p = options_->retry;
  const int attempts = d.value("attemptNumber", 0) - d.value("retryBaseAttempts", 0);
  const int64_t base = d.value("retryBaseMs", d.value("createdAtMs", now));
  int64_t delay = topology::ExponentialBackoffMs(p.base_delay_ms, p.max_delay_ms, attempts,
                                                 p.jitter, d.value("id", ""));
  if (retry_after_ms) delay = std::max(delay, std::min(*retry_after_ms, p.max_age_ms));
  const int64_t next = now + delay;
  if ((p.max_attempts > 0 && attempts >= p.max_attempts) || next - base > p.max_age_ms) {
    ++options_->counters->given_up;
    d["status"] = "failed";
    d["errorMessage"] = "given up after " + std::to_string(d.value("attemptNumber", 0)) +
                        " attempts; the last: " + d.value("errorMessage", error_class);
    d["finishedAt"] = FormatTimestamp(now);
    timers_->Cancel(d.value("id", ""));
    return;
  }
  d["status"] = "pending";
  d["scheduledAt"] = FormatTimestamp(next);
  d["scheduledAtMs"] = next;
  d["nextRetryAt"] = FormatTimestamp(next);
  timers_->Schedule(d.value("id", ""), next, "");
}

}  // namespace cm::webhooks
