#include "processors/cloudmatrix/webhook_attempt_log.h"

#include <atomic>
#include <chrono>

namespace cm::cloudmatrix {

state::Result<std::unique_ptr<KafkaAttemptLog>> KafkaAttemptLog::Create(
    const std::string& bootstrap, std::string topic) {
  topology::RecordProducerOptions options;
  options.bootstrap_servers = bootstrap;
  options.client_id = "cmstream-webhook-attempts";
  options.linger = std::chrono::milliseconds(1);
  options.delivery_timeout = std::chrono::seconds(30);
  auto producer = topology::RecordProducer::Create(options);
  if (!producer.ok()) return producer.status();
  return std::unique_ptr<KafkaAttemptLog>(
      new KafkaAttemptLog(std::move(producer).value(), std::move(topic)));
}

state::Status KafkaAttemptLog::Append(const std::string& organization, const std::string& value,
                                      int64_t timestamp_ms) {
  (void)timestamp_ms;  // the producer stamps the append time, which is when the outcome is known
  // Each sender thread waits for its own record; any of them may serve the reports.
  auto done = std::make_shared<std::atomic<bool>>(false);
  auto status = std::make_shared<state::Status>();
  auto queued = producer_->Produce({topic_, organization, value, {}, -1},
                                   [done, status](const topology::DeliveryReport& report) {
                                     *status = report.status;
                                     done->store(true);
                                   });
  if (!queued.ok()) return queued;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(35);
  while (!done->load()) {
    if (std::chrono::steady_clock::now() > deadline)
      return state::Status::Unavailable("the attempt outcome was not acknowledged in time");
    producer_->Poll(std::chrono::milliseconds(10));
  }
  return *status;
}

}  // namespace cm::cloudmatrix
