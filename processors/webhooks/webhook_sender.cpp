#include "processors/webhooks/webhook_sender.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <nlohmann/json.hpp>

#include "processors/webhooks/webhook_signature.h"
#include "topology/common/json.h"
#include "topology/common/log.h"
#include "topology/common/thread_name.h"
#include "topology/common/wall_clock.h"

namespace cm::webhooks {

using nlohmann::json;

namespace {

TransportFailure FailureFromName(std::string_view name) {
  for (auto f : {TransportFailure::kTimeout, TransportFailure::kConnection, TransportFailure::kTls,
                 TransportFailure::kBlockedAddress, TransportFailure::kInvalidUrl}) {
    if (TransportFailureName(f) == name) return f;
  }
  return TransportFailure::kNone;
}

}  // namespace

std::string AttemptOutcome::ToJson() const {
  json j = {{"organizationId", organization},
            {"webhookId", webhook_id},
            {"deliveryId", delivery_id},
            {"attemptNumber", attempt},
            {"attemptedAtMs", attempted_at_ms},
            {"statusCode", response.status},
            {"responseTimeMs", response.response_time_ms},
            {"failure", TransportFailureName(response.failure)},
            {"error", response.error}};
  if (response.retry_after_ms) j["retryAfterMs"] = *response.retry_after_ms;
  return j.dump();
}

state::Result<AttemptOutcome> AttemptOutcome::FromJson(std::string_view value) {
  auto parsed = topology::ParseJson(value, 8);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (!j.is_object() || !j.contains("deliveryId") || !j["deliveryId"].is_string() ||
      !j.contains("webhookId") || !j["webhookId"].is_string() || !j.contains("attemptNumber") ||
      !j["attemptNumber"].is_number_integer())
    return state::Status::InvalidArgument(
        "an attempt outcome needs deliveryId, webhookId and attemptNumber");
  AttemptOutcome o;
  o.organization = j.value("organizationId", "");
  o.webhook_id = j["webhookId"].get<std::string>();
  o.delivery_id = j["deliveryId"].get<std::string>();
  o.attempt = j["attemptNumber"].get<int>();
  o.attempted_at_ms = j.value("attemptedAtMs", int64_t{0});
  o.response.status = j.value("statusCode", 0);
  o.response.response_time_ms = j.value("responseTimeMs", int64_t{0});
  o.response.failure = FailureFromName(j.value("failure", "none"));
  o.response.error = j.value("error", "");
  if (j.contains("retryAfterMs") && j["retryAfterMs"].is_number_integer())
    o.response.retry_after_ms = j["retryAfterMs"].get<int64_t>();
  return o;
}

WebhookSender::WebhookSender(std::unique_ptr<WebhookTransport> transport,
                             std::unique_ptr<AttemptLog> log, WebhookSenderOptions options)
    : transport_(std::move(transport)), log_(std::move(log)), options_(options) {
  if (options_.threads == 0) options_.threads = 1;
  if (options_.per_endpoint == 0) options_.per_endpoint = 1;
  if (options_.capacity == 0) options_.capacity = 1;
  for (size_t i = 0; i < options_.threads; ++i)
    threads_.emplace_back([this, i] {
      topology::NameCurrentThread("cm-webhook-" + std::to_string(i));
      Work();
    });
}

WebhookSender::~WebhookSender() { Stop(); }

WebhookSender::Handover WebhookSender::Batch::Add(DeliveryJob job) {
  if (stopped_) return Handover::kStopped;
  size_t& in_sender = InSender(job.webhook_id);
  Handover refusal = Handover::kAccepted;
  if (in_sender >= sender_->options_.per_endpoint) {
    refusal = Handover::kEndpointBusy;
  } else if (room_ == 0) {
    refusal = Handover::kFull;
  }
  if (refusal != Handover::kAccepted) {
    std::lock_guard lock(sender_->mu_);  // rare: the tick stops asking once its room is used
    sender_->CountRefusal(refusal);
    return refusal;
  }
  ++in_sender;
  --room_;
  jobs_.push_back(std::move(job));
  return Handover::kAccepted;
}

bool WebhookSender::Batch::EndpointHasRoom(const std::string& webhook_id) {
  return InSender(webhook_id) < sender_->options_.per_endpoint;
}

size_t& WebhookSender::Batch::InSender(const std::string& webhook_id) {
  if (auto it = per_endpoint_.find(webhook_id); it != per_endpoint_.end()) return it->second;
  size_t n = 0;
  {
    std::lock_guard lock(sender_->mu_);
    if (auto it = sender_->per_endpoint_.find(webhook_id); it != sender_->per_endpoint_.end())
      n = it->second;
  }
  return per_endpoint_.emplace(webhook_id, n).first->second;
}

WebhookSender::Batch WebhookSender::OpenBatch(size_t at_most) {
  std::lock_guard lock(mu_);
  const size_t used = queue_.size() + sending_ + appending_;
  const size_t room = stopped_ || used >= options_.capacity ? 0 : options_.capacity - used;
  return Batch(*this, std::min(at_most, room), stopped_);
}

WebhookSender::Handover WebhookSender::Refuses(const DeliveryJob& job) const {
  if (stopped_) return Handover::kStopped;
  if (busy_.count(job.delivery_id) != 0) return Handover::kBusy;
  if (auto it = per_endpoint_.find(job.webhook_id);
      it != per_endpoint_.end() && it->second >= options_.per_endpoint)
    return Handover::kEndpointBusy;
  if (queue_.size() + sending_ + appending_ >= options_.capacity) return Handover::kFull;
  return Handover::kAccepted;
}

void WebhookSender::CountRefusal(Handover refusal) {
  switch (refusal) {
    case Handover::kBusy:
      ++counters_.refused_busy;
      break;
    case Handover::kEndpointBusy:
      ++counters_.refused_endpoint_busy;
      break;
    case Handover::kFull:
      ++counters_.refused_full;
      break;
    case Handover::kAccepted:
    case Handover::kStopped:
      break;
  }
}

std::vector<WebhookSender::Handover> WebhookSender::Submit(Batch batch) {
  std::vector<Handover> handed;
  handed.reserve(batch.jobs_.size());
  size_t accepted = 0;
  {
    std::lock_guard lock(mu_);
    for (DeliveryJob& job : batch.jobs_) {
      const Handover handover = Refuses(job);
      handed.push_back(handover);
      if (handover != Handover::kAccepted) {
        CountRefusal(handover);
        continue;
      }
      ++counters_.submitted;
      busy_.insert(job.delivery_id);
      ++per_endpoint_[job.webhook_id];
      queue_.push_back(std::move(job));
      ++accepted;
    }
  }
  // One worker woken per job: waking them all sent the idle ones beyond the batch's jobs back to
  // sleep empty-handed. A busy worker looks at the queue before it waits again, so a job left
  // when every worker was busy is taken when one is done.
  for (size_t i = 0; i < accepted; ++i) cv_.notify_one();
  return handed;
}

WebhookSender::Counters WebhookSender::counters() const {
  std::lock_guard lock(mu_);
  Counters c = counters_;
  c.queued = queue_.size();
  c.in_flight = sending_;
  c.appending = appending_;
  return c;
}

void WebhookSender::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_ && threads_.empty()) return;
    stopped_ = true;
    for (const auto& job : queue_) {
      busy_.erase(job.delivery_id);
      if (--per_endpoint_[job.webhook_id] == 0) per_endpoint_.erase(job.webhook_id);
    }
    queue_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  // The log reports every append within its own delivery timeout.
  std::unique_lock lock(mu_);
  appended_cv_.wait(lock, [&] { return appending_ == 0; });
}

state::Result<DeliveryRequest> WebhookSender::Compose(const DeliveryJob& job, int64_t now_s) {
  DeliveryRequest request;
  request.url = job.url;
  request.body = job.body;
  request.timeout_ms = job.timeout_ms;
  std::string signatures;
  for (const auto& secret : job.secrets) {
    auto key = DecodeWebhookSecret(secret);
    if (!key.ok()) return key.status();
    if (!signatures.empty()) signatures += ' ';
    signatures += SignWebhook(*key, job.delivery_id, now_s, job.body);
  }
  request.headers = {{"Content-Type", "application/json"},
                     {"webhook-id", job.delivery_id},
                     {"webhook-timestamp", std::to_string(now_s)},
                     {"webhook-signature", signatures}};
  for (const auto& h : job.headers) request.headers.push_back(h);
  return request;
}

void WebhookSender::Work() {
  for (;;) {
    DeliveryJob job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopped_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopped
      job = std::move(queue_.front());
      queue_.pop_front();
      ++sending_;
    }
    AttemptOutcome outcome;
    outcome.organization = job.organization;
    outcome.webhook_id = job.webhook_id;
    outcome.delivery_id = job.delivery_id;
    outcome.attempt = job.attempt;
    outcome.attempted_at_ms = topology::WallClockMs();
    auto request = Compose(job, outcome.attempted_at_ms / 1000);
    if (!request.ok()) {
      outcome.response.failure = TransportFailure::kInvalidUrl;
      outcome.response.error = "cannot sign: " + request.status().message();
    } else {
      try {
        outcome.response = transport_->Send(*request);
      } catch (const std::exception& e) {
        outcome.response = {};
        outcome.response.failure = TransportFailure::kConnection;
        outcome.response.error = std::string("transport threw: ") + e.what();
      }
    }
    const bool success = outcome.response.failure == TransportFailure::kNone &&
                         outcome.response.status >= 200 && outcome.response.status < 300;
    {
      std::lock_guard lock(mu_);
      --sending_;
      ++appending_;
      ++counters_.sent;
      ++(success ? counters_.succeeded : counters_.failed);
      if (--per_endpoint_[job.webhook_id] == 0) per_endpoint_.erase(job.webhook_id);
    }
    log_->Append(job.organization, outcome.ToJson(),
                 [this, id = job.delivery_id](const state::Status& s) { Appended(id, s); });
  }
}

void WebhookSender::Appended(const std::string& delivery_id, const state::Status& status) {
  if (!status.ok()) {
    // The delivery is sent again once its lease ends.
    topology::Log(topology::LogLevel::kError, "webhook_outcome_lost",
                  {{"deliveryId", delivery_id}, {"error", status.message()}});
  }
  std::lock_guard lock(mu_);
  if (!status.ok()) ++counters_.outcome_append_failures;
  busy_.erase(delivery_id);
  if (--appending_ == 0) appended_cv_.notify_all();
}

}  // namespace cm::webhooks
