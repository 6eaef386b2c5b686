#pragma once

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "topology/kafka/kafka_client.h"
#include "topology/processor/record.h"
#include "topology/runtime/streams_config.h"
#include "topology/runtime/thread_failure.h"

namespace cm::topology {

// The lowest and highest offset a broker acknowledged for one partition in one commit.
struct DeliveryRange {
  int64_t first = -1;
  int64_t last = -1;
  void Add(int64_t offset) {
    if (first < 0 || offset < first) first = offset;
    last = std::max(last, offset);
  }
};

// The one producer of a stream thread (Kafka Streams' StreamsProducer): transactional under
// exactly-once, idempotent otherwise. Changelog, commit-log and output records all go through
// Produce. The first failed delivery is kept until ClearDeliveryError, so the commit that sent
// the record learns of it at its next Flush; later failures add nothing.
class StreamProducer {
 public:
  // Under exactly-once also initialises transactions, which fences an earlier incarnation with
  // the same transactional id (`client_id`) and aborts what it left open. Throws on failure.
  StreamProducer(const StreamsConfig& config, const std::string& client_id, ThreadFailure& failure);
  StreamProducer(const StreamProducer&) = delete;
  StreamProducer& operator=(const StreamProducer&) = delete;

  // Opens a transaction under exactly-once unless one is open.
  void BeginTransactionIfNeeded();
  // A header as views, for one that goes out after a record's own (an output's id).
  struct HeaderView {
    std::string_view key;
    std::string_view value;
  };
  // Sends one record to `partition` inside the transaction (opened if needed). A full queue
  // waits for deliveries. The acknowledged offset goes into `range` if not null. A null value
  // is a tombstone. `extra`, if not null, is one more header after `headers`: the caller need
  // not copy a record's headers to add one.
  void Produce(const std::string& topic, int32_t partition, std::string_view key,
               std::optional<std::string_view> value, int64_t timestamp,
               const std::vector<Header>& headers, DeliveryRange* range,
               const HeaderView* extra = nullptr);
  // Waits up to 60 s for everything sent; false if a delivery failed since ClearDeliveryError.
  bool Flush();
  // Serves delivery reports without waiting.
  void Poll();

  struct TransactionError {
    std::string what;
    bool abortable = false;  // AbortTransaction can still close it
  };
  bool in_transaction() const { return in_transaction_; }
  // Commits the open transaction. On an error the transaction still counts as open: the caller
  // aborts it, or gives it up with AbandonTransaction.
  std::optional<TransactionError> CommitTransaction(int timeout_ms);
  // Aborts the transaction; librdkafka's error if that failed (it then still counts as open).
  std::optional<std::string> AbortTransaction(int timeout_ms);
  // Forgets the open transaction without telling the broker (after a failed commit).
  void AbandonTransaction() { in_transaction_ = false; }
  // Without a transaction: drops the records still queued and waits for those in flight.
  void PurgeQueued();

  rd_kafka_resp_err_t delivery_error() const { return delivery_error_; }
  void ClearDeliveryError() { delivery_error_ = RD_KAFKA_RESP_ERR_NO_ERROR; }
  uint64_t produced() const { return produced_; }
  // For metadata requests (partition counts of output topics).
  rd_kafka_t* handle() { return producer_.get(); }

 private:
  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque);
  // Keeps `err` as the delivery error unless one is kept already (see the class comment).
  void KeepFirstError(rd_kafka_resp_err_t err);
  static KafkaHandle NewProducer(const StreamsConfig& config, const std::string& client_id,
                                 StreamProducer* self);
  const StreamsConfig& config_;
  ThreadFailure& failure_;
  KafkaHandle producer_;
  TopicHandles topics_;  // declared after producer_, so destroyed before it
  bool in_transaction_ = false;
  rd_kafka_resp_err_t delivery_error_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  uint64_t produced_ = 0;
};

}  // namespace cm::topology
