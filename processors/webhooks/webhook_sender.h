#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "processors/webhooks/webhook_transport.h"
#include "state/status.h"

namespace cm::webhooks {

// Where the sender appends the outcome of each attempt: cloudmatrix.webhook-attempts, keyed by
// organization, so the task that owns the delivery applies it (processors/cloudmatrix wires a
// Kafka producer in). Appends are asynchronous, so a sender thread goes on to its next attempt
// while the outcome is on its way.
class AttemptLog {
 public:
  using Appended = std::function<void(const state::Status&)>;
  virtual ~AttemptLog() = default;
  // Queues the record. `appended` runs exactly once, when the record is durable or has
  // failed, on any thread (possibly inside Append).
  virtual void Append(const std::string& organization, const std::string& value,
                      Appended appended) = 0;
};

struct WebhookSenderOptions {
  size_t threads = 16;      // --webhook-concurrency: attempts in flight at once, all endpoints
  size_t per_endpoint = 4;  // --webhook-endpoint-concurrency: in flight to one endpoint
  size_t capacity = 4096;   // queued, in flight or being appended; no more go in
};

// One attempt handed to the sender: what to send, and whom it belongs to.
struct DeliveryJob {
  std::string organization;
  std::string webhook_id;
  std::string delivery_id;  // also the webhook-id header
  int attempt = 1;
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // the endpoint's custom headers
  std::string body;
  // The endpoint's signing secrets (whsec_...), newest first: one signature each.
  std::vector<std::string> secrets;
  int64_t timeout_ms = 30'000;
};

// The outcome record of one attempt, as appended to cloudmatrix.webhook-attempts.
struct AttemptOutcome {
  std::string organization;
  std::string webhook_id;
  std::string delivery_id;
  int attempt = 0;
  int64_t attempted_at_ms = 0;
  DeliveryResponse response;

  std::string ToJson() const;
  static state::Result<AttemptOutcome> FromJson(std::string_view value);
};

// Sends webhook attempts on threads of its own (attemptDelivery of the seeds), so a slow or
// unreachable endpoint never stalls a stream thread: signs each request when it goes out
// (Standard Webhooks), sends it through the WebhookTransport and appends the outcome to the
// AttemptLog. Owned by `cmstream run`, shared by every task; stopped after the streams.
//
// A delivery stays busy from its hand-over until its outcome has been appended, so it is never
// in flight twice from one process; at most `per_endpoint` attempts are queued for or being
// sent to one endpoint at once. Jobs are handed over a Batch at a time. Thread-safe; a Batch
// belongs to one thread.
class WebhookSender {
 public:
  enum class Handover { kAccepted, kBusy, kEndpointBusy, kFull, kStopped };

  // One tick's jobs, admitted as they are added against the sender's limits (its room when
  // the batch opened, each endpoint's attempts in the sender when the batch first asks about
  // it, and what the batch holds), then handed over together. Handing over a job at a time
  // took the sender's lock once per job, against the sender threads taking jobs under it: the
  // stream thread blocked and was preempted there for about a fifth of its time
  // (ops/bench/webhooks).
  class Batch {
   public:
    Batch(Batch&&) = default;
    Batch& operator=(Batch&&) = default;
    Batch(const Batch&) = delete;  // handed over once
    Batch& operator=(const Batch&) = delete;
    // kAccepted: the job is staged. kEndpointBusy, kFull or kStopped: refused, as the sender
    // would refuse it.
    Handover Add(DeliveryJob job);
    bool EndpointHasRoom(const std::string& webhook_id);
    // How many more jobs Add would stage (per-endpoint limits aside).
    size_t room() const { return room_; }
    bool empty() const { return jobs_.empty(); }

   private:
    friend class WebhookSender;
    Batch(WebhookSender& sender, size_t room, bool stopped)
        : sender_(&sender), room_(room), stopped_(stopped) {}
    size_t& InSender(const std::string& webhook_id);

    WebhookSender* sender_;
    size_t room_;
    bool stopped_;
    std::map<std::string, size_t, std::less<>> per_endpoint_;  // as first asked, plus staged
    std::vector<DeliveryJob> jobs_;
  };
  WebhookSender(std::unique_ptr<WebhookTransport> transport, std::unique_ptr<AttemptLog> log,
                WebhookSenderOptions options = {});
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  // A batch with room for at most `at_most` jobs.
  Batch OpenBatch(size_t at_most);
  // Hands the batch's jobs over under one lock, each checked again: another thread's batch may
  // have taken the room or the endpoint's, a delivery may still be in the sender (kBusy), the
  // sender may have stopped. Returns what became of each job, in the order they were added.
  std::vector<Handover> Submit(Batch batch);
  // Lets the attempts being sent finish and waits until their outcomes are appended, drops the
  // queued ones (their deliveries are retried once their lease ends) and joins the threads.
  void Stop();

  struct Counters {
    uint64_t submitted = 0;
    uint64_t refused_busy = 0;           // the delivery is already in the sender
    uint64_t refused_endpoint_busy = 0;  // its endpoint has per_endpoint attempts in the sender
    uint64_t refused_full = 0;           // capacity reached
    uint64_t sent = 0;                   // attempts that reached the transport
    uint64_t succeeded = 0;
    uint64_t failed = 0;
    uint64_t outcome_append_failures = 0;
    size_t queued = 0;
    size_t in_flight = 0;
    size_t appending = 0;  // sent, outcome not yet durable
  };
  Counters counters() const;
  const WebhookTransport& transport() const { return *transport_; }

  // The request of an attempt at `now_s`: Content-Type, the Standard Webhooks headers (one
  // signature per secret) and the custom headers.
  static state::Result<DeliveryRequest> Compose(const DeliveryJob& job, int64_t now_s);

 private:
  void Work();
  // Whether the job is refused, and why (kAccepted if not); under mu_.
  Handover Refuses(const DeliveryJob& job) const;
  // Counts a refusal; under mu_.
  void CountRefusal(Handover refusal);
  void Appended(const std::string& delivery_id, const state::Status& status);

  std::unique_ptr<WebhookTransport> transport_;
  std::unique_ptr<AttemptLog> log_;
  WebhookSenderOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable appended_cv_;
  std::deque<DeliveryJob> queue_;
  size_t sending_ = 0;
  size_t appending_ = 0;
  std::set<std::string> busy_;                  // deliveries handed over, outcome not appended
  std::map<std::string, size_t> per_endpoint_;  // attempts queued or being sent per webhook
  Counters counters_;
  bool stopped_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace cm::webhooks
