#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "state/status.h"
#include "topology/kafka/record_producer.h"
#include "topology/query/http_server.h"
#include "topology/query/idempotency.h"
#include "topology/runtime/kafka_streams.h"

namespace cm::topology {

// Appends commands to a topic and waits until the task that owns them has applied them
// (DESIGN.md §6): the task's processor writes each command's result to a key-value store under
// the command id, and the result is read back from the committed store. Thread-safe; HTTP
// threads share one instance.
class CommandSender {
 public:
  CommandSender(const KafkaStreams& streams, const std::string& bootstrap_servers);
  ~CommandSender();
  CommandSender(const CommandSender&) = delete;
  CommandSender& operator=(const CommandSender&) = delete;

  struct Command {
    std::string topic;
    std::string key;  // partitions the command: it must map to `task`
    std::string value;
    TaskId task;
    std::string result_store;
    std::string result_key;  // usually the command id
  };
  // The stored result; Unavailable when the append fails, or when the task has not applied the
  // command within `timeout` (it may still apply it later: commands carry ids so a retry with
  // the same id is applied once).
  state::Result<std::string> AppendAndAwait(const Command& command,
                                            std::chrono::milliseconds timeout) const;

  // What an HTTP handler submits (DESIGN.md §6), on the instance that owns `task`.
  struct Submission {
    std::string topic;
    std::string key;  // partitions the command: it must map to `task`
    TaskId task;
    std::string result_store;  // where the task records results (CommandResults)
    std::string type;
    std::string organization;  // stamped as organizationId unless empty (a whole-task command)
    CommandIdentity identity;
    nlohmann::json fields;
  };
  // Stamps the fields with type, commandId, requestHash, organizationId and issuedAt, appends
  // and awaits the command, and answers with its recorded status and body: 422
  // idempotency_key_reused when the result was recorded for another request, 503 when the task
  // has not applied it in time. `decorate` may add to a successful body.
  HttpResponse Submit(Submission submission, std::chrono::milliseconds timeout,
                      const std::function<void(nlohmann::json&)>& decorate = nullptr) const;

  struct Message {
    std::string topic;
    std::string key;
    std::string value;
    int32_t partition = -1;  // -1: the producer's partitioner picks one
  };
  // Appends the messages and waits until Kafka acknowledged every one of them (or refused
  // one: Unavailable naming the first failure). For producers at the HTTP edge, e.g. events.
  state::Status Append(const std::vector<Message>& messages) const;
  state::Status Append(const std::string& topic, const std::string& key, const std::string& value,
                       int32_t partition = -1) const;

 private:
  std::optional<std::string> ReadResult(const Command& command) const;

  const KafkaStreams& streams_;
  std::unique_ptr<RecordProducer> producer_;
};

}  // namespace cm::topology
