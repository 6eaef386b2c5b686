#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "processors/webhooks/circuit_breaker.h"
#include "processors/webhooks/webhook_sender.h"
#include "processors/webhooks/webhooks_options.h"
#include "topology/processor/command_results.h"
#include "topology/processor/processor.h"

namespace cm::webhooks {

inline constexpr char kWebhooksProcessorNode[] = "webhooks-processor";
// Reads the team events, quota alerts and attempt outcomes (the events and commands come
// through usage's source).
inline constexpr char kWebhooksSourceNode[] = "webhooks-source";

struct AttemptOutcome;

// Webhook delivery (seed task 3) for the organizations of one task:
//  - applies webhooks.* commands (endpoints, enqueueEvent, retryDelivery, sendTestEvent,
//    resetCircuit) and records their results;
//  - fans every event (cloudmatrix.events, team events, quota alerts, enqueued events) out to
//    the organization's matching active endpoints: one delivery per (event, endpoint), its id
//    derived from both, due at once in the delivery timer store;
//  - processQueue, a wall-clock punctuation: hands due deliveries to the WebhookSender when
//    their endpoint's circuit lets them through, and takes attempts whose outcome never came
//    back (their lease ended) as failed;
//  - applies each attempt outcome from cloudmatrix.webhook-attempts: status, attempts, stats,
//    latency histogram, circuit, the next retry or giving up, 410 disabling the endpoint.
// Everything but the punctuation follows from the records, so a replay rebuilds the same
// state; the punctuation sends nothing while a replay is pending (ProcessorContext::
// ReplayPending), so what was delivered before a reset is not delivered again.
class WebhooksProcessor final : public topology::Processor {
 public:
  explicit WebhooksProcessor(std::shared_ptr<const WebhooksOptions> options);
  ~WebhooksProcessor() override;
  WebhooksProcessor(const WebhooksProcessor&) = delete;
  WebhooksProcessor& operator=(const WebhooksProcessor&) = delete;
  void Init(topology::ProcessorContext& context) override;
  void Process(const topology::Record& record) override;

  // processQueue: public so tests can drive it.
  void ProcessQueue(int64_t now_ms);

 private:
  struct Outcome {
    int status = 200;
    nlohmann::json body;
  };
  struct Command {
    std::string type;
    std::string id;
    std::string org;
    int64_t now = 0;
    const nlohmann::json* fields = nullptr;
  };
  struct Event {
    std::string org;
    std::string id;
    std::string type;
    std::string occurred_at;
    nlohmann::json data;
  };

  void ProcessCommand(const topology::Record& record);
  Outcome Apply(const Command& c);
  Outcome Register(const Command& c);
  Outcome Update(const Command& c);
  Outcome Delete(const Command& c);
  Outcome Enqueue(const Command& c);
  Outcome RetryDelivery(const Command& c);
  Outcome SendTest(const Command& c);
  Outcome ResetCircuit(const Command& c);

  // An event from a topic: fanned out when the organization has endpoints.
  void ProcessEvent(const topology::Record& record);
  // The organization's endpoints, parsed, in one scan.
  std::vector<nlohmann::json> Endpoints(const std::string& org);
  // A delivery for each of `endpoints` that is active and subscribed to the event's type (or
  // only the one with id `only`, whatever it subscribed to); the webhook ids.
  std::vector<std::string> FanOut(const Event& event, const std::vector<nlohmann::json>& endpoints,
                                  int64_t now,
                                  const std::optional<std::string>& only = std::nullopt);

  void ApplyOutcome(const AttemptOutcome& outcome, int64_t now);
  // Records a failed attempt's consequences on the delivery: the next retry, or giving up.
  void ScheduleRetryOrGiveUp(nlohmann::json& delivery, const std::string& error_class,
                             std::optional<int64_t> retry_after_ms, int64_t now);
  // An attempt in the tick's batch: its delivery is recorded as sent already, and `before`
  // holds the fields that changed, as they were (null: absent), in case the sender refuses it.
  struct StagedAttempt {
    std::string delivery_id;
    std::string webhook;
    nlohmann::json before;
  };
  // One processQueue tick: its current batch for the sender and the attempts it holds.
  struct DispatchTick {
    WebhookSender::Batch batch;
    std::vector<StagedAttempt> staged;
  };
  // Hands the tick's batch over (leaving it moved from) and puts back and requeues what the
  // sender refused. Mid-tick, Dispatch then opens the next batch with the room left.
  void HandOver(DispatchTick& tick, int64_t now);
  // Stages a due delivery's attempt in the tick, or defers it (Requeue, Park, the circuit).
  void Dispatch(const std::string& delivery_id, int64_t now, DispatchTick& tick);
  // Records an attempt as sent: in progress until its outcome or its lease's end. Returns the
  // fields it changed, as they were.
  nlohmann::json MarkSent(nlohmann::json& delivery, int64_t now);
  // Not sent: the probe slot (if this delivery took it) goes back to `endpoint`'s circuit, and
  // the delivery asks again, parked behind its endpoint's attempts or at the next tick.
  void Requeue(nlohmann::json* endpoint, const std::string& webhook, const std::string& delivery_id,
               bool endpoint_busy, int64_t now);
  // A due delivery whose endpoint is at its per-endpoint limit waits in memory (parked_) for
  // the endpoint's room instead of being rescheduled every tick: each reschedule is a timer
  // store write and changelog records, thousands a second behind a slow endpoint. Its stored
  // timer moves a lease on, which brings it back after a restart.
  void Park(const std::string& webhook, const std::string& delivery_id, int64_t now);
  // Adds a delivery to its endpoint's parked queue unless it is there already or memory is
  // full (kMaxParked); whether it is parked now.
  bool ParkInMemory(const std::string& webhook, const std::string& delivery_id);
  // Hands parked deliveries to the sender, oldest first per endpoint, while their endpoint has
  // room; at most `room`. Returns how many it took.
  size_t DispatchParked(int64_t now, size_t room, DispatchTick& tick);
  // When a delivery the circuit holds back asks again: at the end of an open circuit's
  // cool-down, or, behind a half-open circuit's probe, once the probe's outcome is applied
  // (Wake): it waits in memory (held_) with its stored timer a lease on, which brings it back
  // after a restart or when memory is full. Asking every second instead reads and reschedules
  // every waiting delivery each second of a probe that hangs until its timeout.
  int64_t HoldForCircuit(const std::string& webhook, const std::string& delivery_id,
                         const CircuitBreaker::Admission& admission, int64_t now);
  // Hands the deliveries held behind a probe to the parked ones, which go as the circuit
  // and the endpoint's limit let them.
  void Wake(const std::string& webhook);
  // Hands only the oldest one over: after a successful probe of a circuit that needs more,
  // it is the next probe and the others stay held. Waking them all had each read, refused by
  // the circuit and held again (a timer write) once per probe.
  void WakeNext(const std::string& webhook);
  // After a parked delivery of `webhook` was dispatched: when deliveries are held behind a
  // half-open circuit that has no probe in flight (the one woken did not become it: it had
  // finished, was cancelled, or its endpoint had no room), the next one is woken.
  void WakeNextIfNoProbe(const std::string& webhook);
  // Drops the oldest `at_most` deliveries held behind a probe from memory (their timers bring
  // them back); returns their ids.
  std::vector<std::string> Forget(const std::string& webhook,
                                  size_t at_most = std::numeric_limits<size_t>::max());

  std::optional<nlohmann::json> LoadEndpoint(const std::string& org, const std::string& id);
  // The endpoint stored at key as `raw`, parsed (from parsed_endpoints_ when it holds these
  // bytes); null when malformed. Valid until the next call.
  const nlohmann::json* ParsedEndpoint(std::string_view key, std::string_view raw);
  void SaveEndpoint(const nlohmann::json& endpoint);
  // How many endpoints the organization has, from its count key. The counts are trusted only
  // if this processor made them (the mark holds its token): after the task is opened, the first
  // lookup counts every organization's endpoints in one scan of the task's endpoints, so state
  // written by a binary that did not keep counts (before them, or a rolling upgrade's older
  // instance owning the task in between) is counted right.
  uint64_t EndpointCount(const std::string& org);
  void CountEndpoints();
  void SaveEndpointCount(const std::string& org, uint64_t count);
  std::optional<nlohmann::json> LoadDelivery(const std::string& org, const std::string& id);
  void SaveDelivery(const nlohmann::json& delivery);
  // Marks a pending or in-flight delivery cancelled; false when it had finished.
  bool Cancel(nlohmann::json& delivery, const std::string& why, int64_t now);
  // The deliveries of an endpoint that are pending (waiting for an attempt or a retry).
  std::vector<std::string> PendingDeliveries(const std::string& org, const std::string& webhook);
  // Makes every pending delivery of an endpoint due now (its circuit was reset).
  void DueNow(const std::string& org, const std::string& webhook, int64_t now);
  std::string Body(const nlohmann::json& delivery, const nlohmann::json& event) const;

  std::shared_ptr<const WebhooksOptions> options_;
  topology::ProcessorContext* context_ = nullptr;
  state::KeyValueStore* endpoints_ = nullptr;
  state::KeyValueStore* deliveries_ = nullptr;
  state::KeyValueStore* health_ = nullptr;
  state::TimerStore* timers_ = nullptr;
  std::optional<topology::CommandResults> results_;
  std::map<std::string, std::deque<std::string>> parked_;  // webhook id -> delivery ids
  std::unordered_set<std::string> parked_ids_;
  std::map<std::string, std::deque<std::string>> held_;  // webhook id -> delivery ids
  size_t held_count_ = 0;
  // Endpoints as last parsed, by store key, with the bytes they were parsed from: every
  // dispatch and outcome loads its endpoint, and a parse costs more than comparing the bytes.
  // Entries are used only while the stored bytes are equal, so undone or restored writes are
  // never answered from here.
  std::unordered_map<std::string, std::pair<std::string, nlohmann::json>> parsed_endpoints_;
  // New for each opening of the task: see EndpointCount.
  std::string counts_token_;
};

}  // namespace cm::webhooks
