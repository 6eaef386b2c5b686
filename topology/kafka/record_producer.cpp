#include "topology/kafka/record_producer.h"

#include <librdkafka/rdkafka.h>

#include "topology/common/log.h"
#include "topology/kafka/kafka_client.h"
#include "topology/kafka/kafka_error.h"

namespace cm::topology {

namespace {

void OnDeliveryReport(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  std::unique_ptr<RecordProducer::OnDelivery> callback(
      static_cast<RecordProducer::OnDelivery*>(m->_private));
  DeliveryReport report;
  report.partition = m->partition;
  report.offset = m->offset;
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    report.status =
        state::Status::Unavailable(std::string("not delivered to ") + rd_kafka_topic_name(m->rkt) +
                                   ": " + rd_kafka_err2str(m->err));
    report.fatal = ClassifyKafkaError(m->err) == KafkaErrorAction::kFatal;
  }
  (*callback)(report);
}

}  // namespace

state::Result<std::unique_ptr<RecordProducer>> RecordProducer::Create(
    const RecordProducerOptions& options) {
  std::map<std::string, std::string> settings = {
      {"bootstrap.servers", options.bootstrap_servers},
      {"client.id", options.client_id},
      {"enable.idempotence", options.idempotent ? "true" : "false"},
      {"linger.ms", std::to_string(options.linger.count())},
      {"message.timeout.ms", std::to_string(options.delivery_timeout.count())},
      // Java's default partitioner, so records land where every other client puts the key.
      {"partitioner", "murmur2_random"},
      {"log_level", "3"},
  };
  for (const auto& [k, v] : options.overrides) settings[k] = v;
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (auto s = SetAll(conf, settings); !s.ok()) {
    rd_kafka_conf_destroy(conf);
    return s;
  }
  rd_kafka_conf_set_dr_msg_cb(conf, &OnDeliveryReport);
  auto handle = CreateKafkaHandle(RD_KAFKA_PRODUCER, conf);
  if (!handle.ok()) return handle.status();
  std::unique_ptr<RecordProducer> producer(new RecordProducer());
  producer->producer_ = std::move(handle).value();
  return producer;
}

RecordProducer::~RecordProducer() {
  if (rd_kafka_flush(producer_.get(), 5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // Every callback still has to run once: purged records report a failure.
    rd_kafka_resp_err_t err =
        rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = rd_kafka_flush(producer_.get(), 1000);
    // A destructor cannot report it otherwise; the records' callbacks may not all have run.
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      Log(LogLevel::kWarn, "producer_close_incomplete", {{"error", rd_kafka_err2str(err)}});
  }
}

state::Status RecordProducer::Produce(const OutgoingRecord& record, OnDelivery on_delivery) {
  rd_kafka_headers_t* headers = nullptr;
  if (!record.headers.empty()) {
    headers = rd_kafka_headers_new(record.headers.size());
    for (const auto& [name, value] : record.headers) {
      rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                          static_cast<ssize_t>(value.size()));
    }
  }
  auto callback = std::make_unique<OnDelivery>(std::move(on_delivery));
  for (;;) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_.get(), RD_KAFKA_V_TOPIC(record.topic.c_str()),
        RD_KAFKA_V_PARTITION(record.partition < 0 ? RD_KAFKA_PARTITION_UA : record.partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(record.key.empty() ? nullptr : const_cast<char*>(record.key.data()),
                       record.key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(record.value.data()), record.value.size()),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(callback.get()), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      callback.release();  // owned by the delivery report now; headers by the message
      return state::Status::OK();
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(producer_.get(),
                    10);  // back-pressure: serve reports, then retry the same record
      continue;
    }
    if (headers != nullptr) rd_kafka_headers_destroy(headers);
    return state::Status::Unavailable("cannot produce to " + record.topic + ": " +
                                      rd_kafka_err2str(err));
  }
}

void RecordProducer::Poll(std::chrono::milliseconds timeout) {
  rd_kafka_poll(producer_.get(), static_cast<int>(timeout.count()));
}

state::Status RecordProducer::Flush(std::chrono::milliseconds timeout) {
  rd_kafka_resp_err_t err = rd_kafka_flush(producer_.get(), static_cast<int>(timeout.count()));
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return state::Status::OK();
  return state::Status::Unavailable(std::string("flush: ") + rd_kafka_err2str(err));
}

void RecordProducer::Purge() {
  // Only invalid flags fail a purge; the records then stay queued and deliver as usual.
  if (rd_kafka_resp_err_t err =
          rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
    Log(LogLevel::kWarn, "producer_purge_failed", {{"error", rd_kafka_err2str(err)}});
}

int RecordProducer::InFlight() const { return rd_kafka_outq_len(producer_.get()); }

}  // namespace cm::topology
