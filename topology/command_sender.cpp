#include "topology/command_sender.h"

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <stdexcept>
#include <thread>

namespace cm::topology {

namespace {

struct Delivery {
  std::atomic<bool> done{false};
  std::atomic<rd_kafka_resp_err_t> error{RD_KAFKA_RESP_ERR_NO_ERROR};
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  auto* d = static_cast<Delivery*>(m->_private);
  d->error = m->err;
  d->done = true;
}

}  // namespace

CommandSender::CommandSender(const KafkaStreams& streams, const std::string& bootstrap_servers)
    : streams_(streams) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap_servers.c_str(), err, sizeof err);
  rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof err);
  rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof err);
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  rd_kafka_conf_set_dr_msg_cb(conf, &OnDelivery);
  producer_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (producer_ == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("cannot create command producer: ") + err);
  }
}

CommandSender::~CommandSender() {
  rd_kafka_flush(producer_, 5000);
  rd_kafka_destroy(producer_);
}

std::optional<std::string> CommandSender::ReadResult(const Command& command) const {
  std::optional<std::string> result;
  streams_
      .Query(command.task,
             [&](const ReadOnlyStores& stores) {
               if (auto* store = stores.KeyValue(command.result_store))
                 result = store->Get(command.result_key);
             })
      .ok();
  return result;
}

state::Status CommandSender::Append(const std::string& topic, const std::string& key,
                                    const std::string& value, int32_t partition) const {
  return Append({{topic, key, value, partition}});
}

state::Status CommandSender::Append(const std::vector<Message>& messages) const {
  std::vector<Delivery> deliveries(messages.size());
  size_t produced = 0;
  state::Status status = state::Status::OK();
  while (produced < messages.size()) {
    const Message& m = messages[produced];
    rd_kafka_resp_err_t err = rd_kafka_producev(
        producer_, RD_KAFKA_V_TOPIC(m.topic.c_str()),
        RD_KAFKA_V_PARTITION(m.partition < 0 ? RD_KAFKA_PARTITION_UA : m.partition),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(const_cast<char*>(m.key.data()), m.key.size()),
        RD_KAFKA_V_VALUE(const_cast<char*>(m.value.data()), m.value.size()),
        RD_KAFKA_V_OPAQUE(&deliveries[produced]), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(producer_, 10);  // back-pressure: retry the same message
      continue;
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = state::Status::Unavailable(std::string("cannot append to ") + m.topic + ": " +
                                          rd_kafka_err2str(err));
      break;
    }
    ++produced;
  }
  // Every delivery report of a produced message has to arrive before `deliveries` goes out of
  // scope; librdkafka reports each one (success, or failure at message.timeout.ms).
  for (size_t i = 0; i < produced; ++i) {
    while (!deliveries[i].done) rd_kafka_poll(producer_, 10);  // serves other threads' too
    if (status.ok() && deliveries[i].error != RD_KAFKA_RESP_ERR_NO_ERROR) {
      status = state::Status::Unavailable(std::string("not appended to ") + messages[i].topic +
                                          ": " + rd_kafka_err2str(deliveries[i].error));
    }
  }
  return status;
}

state::Result<std::string> CommandSender::AppendAndAwait(const Command& command,
                                                         std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // A command applied before (a retry with the same id) is answered without appending again.
  if (auto done = ReadResult(command)) return *done;
  if (auto appended = Append({{command.topic, command.key, command.value, command.task.partition}});
      !appended.ok()) {
    return appended;
  }
  // The result appears once the owning task has processed the command and committed.
  for (auto pause = std::chrono::milliseconds(2);;
       pause = std::min(pause * 2, std::chrono::milliseconds(50))) {
    if (auto result = ReadResult(command)) return *result;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(pause);
  }
  return state::Status::Unavailable("the command was appended but not applied within " +
                                    std::to_string(timeout.count()) +
                                    " ms; retry with the same command id");
}

}  // namespace cm::topology
