#include "topology/query/command_sender.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "topology/common/timestamp.h"
#include "topology/common/wall_clock.h"
#include "topology/processor/command_results.h"

namespace cm::topology {

namespace {

struct Delivery {
  std::atomic<bool> done{false};
  state::Status status;
};

}  // namespace

CommandSender::CommandSender(const KafkaStreams& streams, const std::string& bootstrap_servers)
    : streams_(streams) {
  RecordProducerOptions options;
  options.bootstrap_servers = bootstrap_servers;
  options.client_id = "cmstream-commands";
  options.linger = std::chrono::milliseconds(0);  // an HTTP call waits for each append
  auto producer = RecordProducer::Create(options);
  if (!producer.ok()) {
    throw std::runtime_error("cannot create command producer: " + producer.status().ToString());
  }
  producer_ = std::move(producer).value();
}

CommandSender::~CommandSender() = default;

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
  for (; produced < messages.size(); ++produced) {
    const Message& m = messages[produced];
    Delivery* d = &deliveries[produced];
    OutgoingRecord record;
    record.topic = m.topic;
    record.key = m.key;
    record.value = m.value;
    record.partition = m.partition;
    status = producer_->Produce(record, [d](const DeliveryReport& report) {
      d->status = report.status;
      d->done = true;
    });
    if (!status.ok()) break;
  }
  // Every delivery report of a produced message has to arrive before `deliveries` goes out of
  // scope; librdkafka reports each one (success, or failure after the delivery timeout).
  for (size_t i = 0; i < produced; ++i) {
    while (!deliveries[i].done) producer_->Poll(std::chrono::milliseconds(10));  // serves others'
    if (status.ok() && !deliveries[i].status.ok()) status = deliveries[i].status;
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
  // The result appears once the owning task has processed the command and committed: look
  // after each commit of this instance (the task is one of its own). The cap on each wait is
  // only a backstop (every commit wakes the waiters): at 50 ms, each of hundreds of waiting
  // requests woke and read again several times between two commits of a busy thread.
  constexpr auto kBackstop = std::chrono::milliseconds(500);
  for (;;) {
    const uint64_t epoch = streams_.CommitEpoch();
    if (auto result = ReadResult(command)) return *result;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    streams_.AwaitCommit(epoch, std::min(deadline, now + kBackstop));
  }
  return state::Status::Unavailable("the command was appended but not applied within " +
                                    std::to_string(timeout.count()) +
                                    " ms; retry with the same command id");
}

HttpResponse CommandSender::Submit(Submission s, std::chrono::milliseconds timeout,
                                   const std::function<void(nlohmann::json&)>& decorate) const {
  const CommandIdentity& identity = s.identity;
  s.fields["type"] = s.type;
  s.fields["commandId"] = identity.command_id;
  s.fields["requestHash"] = identity.request_hash;
  if (!s.organization.empty()) s.fields["organizationId"] = s.organization;
  s.fields["issuedAt"] = FormatTimestamp(WallClockMs());
  Command command{s.topic, s.key,          s.fields.dump(),
                  s.task,  s.result_store, CommandResults::ResultKey(identity.command_id)};
  auto stored = AppendAndAwait(command, timeout);
  if (!stored.ok()) return HttpResponse::FromStatus(stored.status());
  auto result = nlohmann::json::parse(*stored, nullptr, false);
  if (!result.is_object() || !result.contains("status") || !result["status"].is_number_integer())
    return HttpResponse::Error(500, "internal", "unreadable command result");
  if (result.value("requestHash", identity.request_hash) != identity.request_hash)
    return IdempotencyKeyReused();
  nlohmann::json body = result.value("body", nlohmann::json::object());
  const int status = result["status"].get<int>();
  if (decorate && status < 300) decorate(body);
  return HttpResponse::Json(status, std::move(body));
}

}  // namespace cm::topology
