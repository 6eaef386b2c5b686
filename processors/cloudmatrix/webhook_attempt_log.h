#pragma once

// The webhook sender's AttemptLog for `cmstream run`: each outcome appended to
// cloudmatrix.webhook-attempts with an idempotent Kafka producer, keyed by organization so that
// the task owning the delivery applies it.
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "processors/webhooks/webhook_sender.h"
#include "topology/kafka/record_producer.h"

namespace cm::cloudmatrix {

class KafkaAttemptLog final : public webhooks::AttemptLog {
 public:
  static state::Result<std::unique_ptr<KafkaAttemptLog>> Create(const std::string& bootstrap,
                                                                std::string topic);
  // Waits for the records in flight (their callbacks run) and stops the report thread.
  ~KafkaAttemptLog() override;
  KafkaAttemptLog(const KafkaAttemptLog&) = delete;
  KafkaAttemptLog& operator=(const KafkaAttemptLog&) = delete;

  // Thread-safe. `appended` runs on the log's report thread (or in here when the record cannot
  // be queued, or while librdkafka's queue is full).
  void Append(const std::string& organization, const std::string& value,
              Appended appended) override;

 private:
  KafkaAttemptLog(std::unique_ptr<topology::RecordProducer> producer, std::string topic);

  std::unique_ptr<topology::RecordProducer> producer_;
  std::string topic_;
  std::atomic<bool> stopped_{false};
  std::thread reports_;  // serves delivery reports; last, so it starts once the rest exists
};

}  // namespace cm::cloudmatrix
