#include "topology/runtime/stream_producer.h"

#include <stdexcept>

#include "topology/common/log.h"

namespace cm::topology {

StreamProducer::StreamProducer(const StreamsConfig& config, const std::string& client_id,
                               ThreadFailure& failure)
    : config_(config),
      failure_(failure),
      producer_(NewProducer(config, client_id, this)),
      topics_(producer_.get()) {
  if (config.guarantee == ProcessingGuarantee::kExactlyOnce) {
    // Fences an earlier incarnation with the same transactional id and aborts what it left open.
    if (rd_kafka_error_t* e = rd_kafka_init_transactions(producer_.get(), 30000)) {
      throw std::runtime_error("init_transactions failed: " + TakeErrorMessage(e));
    }
  }
}

KafkaHandle StreamProducer::NewProducer(const StreamsConfig& config, const std::string& client_id,
                                        StreamProducer* self) {
  rd_kafka_conf_t* pc = rd_kafka_conf_new();
  SetOrThrow(pc, "bootstrap.servers", config.bootstrap_servers);
  SetOrThrow(pc, "client.id", client_id);
  SetOrThrow(pc, "log_level", "4");
  SetOrThrow(pc, "partitioner", "murmur2_random");
  SetOrThrow(pc, "linger.ms", "5");
  SetOrThrow(pc, "batch.num.messages", "10000");
  // Records wait here until acknowledged, about 230 bytes each with librdkafka's own, outside
  // the memory budgets: a commit of 170,000 changelog records held 39 MiB at once. A full queue
  // waits for deliveries (Produce), which cost a usage run nothing measurable.
  SetOrThrow(pc, "queue.buffering.max.messages", "100000");
  SetOrThrow(pc, "enable.idempotence", "true");
  if (config.guarantee == ProcessingGuarantee::kExactlyOnce) {
    SetOrThrow(pc, "transactional.id", client_id);
    SetOrThrow(pc, "transaction.timeout.ms", "10000");
  }
  for (const auto& [k, v] : config.producer_overrides) SetOrThrow(pc, k, v);
  rd_kafka_conf_set_dr_msg_cb(pc, &StreamProducer::OnDelivery);
  rd_kafka_conf_set_opaque(pc, self);
  return NewKafkaHandle(RD_KAFKA_PRODUCER, pc);
}

void StreamProducer::OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<StreamProducer*>(opaque);
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    self->KeepFirstError(m->err);
    return;
  }
  if (m->_private != nullptr) static_cast<DeliveryRange*>(m->_private)->Add(m->offset);
}

void StreamProducer::BeginTransactionIfNeeded() {
  if (config_.guarantee != ProcessingGuarantee::kExactlyOnce || in_transaction_) return;
  if (rd_kafka_error_t* e = rd_kafka_begin_transaction(producer_.get())) {
    failure_.Fatal("begin_transaction failed: " + TakeErrorMessage(e));
    return;
  }
  in_transaction_ = true;
}

void StreamProducer::Produce(const std::string& topic, int32_t partition, std::string_view key,
                             std::optional<std::string_view> value, int64_t timestamp,
                             const std::vector<Header>& headers, DeliveryRange* range,
                             const HeaderView* extra) {
  BeginTransactionIfNeeded();
  // A null payload is a tombstone.
  void* payload = value ? const_cast<char*>(value->data()) : nullptr;
  size_t payload_size = value ? value->size() : 0;
  rd_kafka_topic_t* rkt = topics_.Get(topic);
  if (rkt == nullptr) {
    KeepFirstError(rd_kafka_last_error());
    return;
  }
  for (;;) {
    rd_kafka_headers_t* hdrs = nullptr;
    if (!headers.empty() || extra != nullptr) {
      hdrs = rd_kafka_headers_new(headers.size() + (extra != nullptr ? 1 : 0));
      for (const auto& h : headers) {
        rd_kafka_header_add(hdrs, h.key.data(), static_cast<ssize_t>(h.key.size()), h.value.data(),
                            static_cast<ssize_t>(h.value.size()));
      }
      if (extra != nullptr) {
        rd_kafka_header_add(hdrs, extra->key.data(), static_cast<ssize_t>(extra->key.size()),
                            extra->value.data(), static_cast<ssize_t>(extra->value.size()));
      }
    }
    rd_kafka_resp_err_t err =
        rd_kafka_producev(producer_.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                          RD_KAFKA_V_VALUE(payload, payload_size), RD_KAFKA_V_TIMESTAMP(timestamp),
                          RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(range), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++produced_;
      return;
    }
    if (hdrs != nullptr) rd_kafka_headers_destroy(hdrs);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(producer_.get(), 50);  // back-pressure: wait for deliveries
      continue;
    }
    KeepFirstError(err);
    return;
  }
}

void StreamProducer::KeepFirstError(rd_kafka_resp_err_t err) {
  if (delivery_error_ == RD_KAFKA_RESP_ERR_NO_ERROR) delivery_error_ = err;
}

bool StreamProducer::Flush() {
  rd_kafka_resp_err_t err = rd_kafka_flush(producer_.get(), 60000);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) KeepFirstError(err);
  return delivery_error_ == RD_KAFKA_RESP_ERR_NO_ERROR;
}

void StreamProducer::Poll() { rd_kafka_poll(producer_.get(), 0); }

std::optional<StreamProducer::TransactionError> StreamProducer::CommitTransaction(int timeout_ms) {
  rd_kafka_error_t* e = rd_kafka_commit_transaction(producer_.get(), timeout_ms);
  if (e == nullptr) {
    in_transaction_ = false;
    return std::nullopt;
  }
  TransactionError error{rd_kafka_error_string(e), rd_kafka_error_txn_requires_abort(e) != 0};
  rd_kafka_error_destroy(e);
  return error;
}

std::optional<std::string> StreamProducer::AbortTransaction(int timeout_ms) {
  if (rd_kafka_error_t* e = rd_kafka_abort_transaction(producer_.get(), timeout_ms)) {
    return TakeErrorMessage(e);
  }
  in_transaction_ = false;
  return std::nullopt;
}

void StreamProducer::PurgeQueued() {
  // Best effort for an abort without a transaction: what stays queued is delivered, and the
  // commit protocol already treats outputs beyond the last seal as not sent (README,
  // "Exactly-once"). So the errors are logged, not raised.
  if (rd_kafka_resp_err_t err = rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE))
    Log(LogLevel::kWarn, "producer_purge_failed", {{"error", rd_kafka_err2str(err)}});
  if (rd_kafka_resp_err_t err = rd_kafka_flush(producer_.get(), 10000))
    Log(LogLevel::kWarn, "producer_flush_failed", {{"error", rd_kafka_err2str(err)}});
}

}  // namespace cm::topology
