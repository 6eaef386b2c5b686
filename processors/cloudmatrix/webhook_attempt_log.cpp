#include "processors/cloudmatrix/webhook_attempt_log.h"

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

KafkaAttemptLog::KafkaAttemptLog(std::unique_ptr<topology::RecordProducer> producer,
                                 std::string topic)
    : producer_(std::move(producer)), topic_(std::move(topic)), reports_([this] {
        // A report wakes the poll at once; the timeout only bounds how long stopping takes.
        while (!stopped_.load()) producer_->Poll(std::chrono::milliseconds(250));
      }) {}

KafkaAttemptLog::~KafkaAttemptLog() {
  (void)producer_->Flush(std::chrono::seconds(35));
  stopped_.store(true);
  reports_.join();
}

void KafkaAttemptLog::Append(const std::string& organization, const std::string& value,
                             Appended appended) {
  // The producer stamps the append time, which is when the outcome is known.
  auto queued = producer_->Produce(
      {topic_, organization, value, {}, -1},
      [appended](const topology::DeliveryReport& report) { appended(report.status); });
  if (!queued.ok()) appended(queued);
}

}  // namespace cm::cloudmatrix
