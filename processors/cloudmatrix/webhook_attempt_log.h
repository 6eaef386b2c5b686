#pragma once

// The webhook sender's AttemptLog for `cmstream run`: each outcome appended to
// cloudmatrix.webhook-attempts with an idempotent Kafka producer, keyed by organization so that
// the task owning the delivery applies it.
#include <memory>
#include <string>

#include "processors/webhooks/webhook_sender.h"
#include "topology/kafka/record_producer.h"

namespace cm::cloudmatrix {

class KafkaAttemptLog final : public webhooks::AttemptLog {
 public:
  static state::Result<std::unique_ptr<KafkaAttemptLog>> Create(const std::string& bootstrap,
                                                                std::string topic);
  // Returns once Kafka acknowledged the record (or refused it). Thread-safe.
  state::Status Append(const std::string& organization, const std::string& value,
                       int64_t timestamp_ms) override;

 private:
  KafkaAttemptLog(std::unique_ptr<topology::RecordProducer> producer, std::string topic)
      : producer_(std::move(producer)), topic_(std::move(topic)) {}

  std::unique_ptr<topology::RecordProducer> producer_;
  std::string topic_;
};

}  // namespace cm::cloudmatrix
