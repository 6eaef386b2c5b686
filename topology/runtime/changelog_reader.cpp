#include "topology/runtime/changelog_reader.h"

#include <chrono>
#include <stdexcept>
#include <string>

#include "topology/common/log.h"

namespace cm::topology {

KafkaHandle ChangelogReader::NewRestoreConsumer(const StreamsConfig& config,
                                                const std::string& client_id) {
  rd_kafka_conf_t* rc = rd_kafka_conf_new();
  SetOrThrow(rc, "bootstrap.servers", config.bootstrap_servers);
  SetOrThrow(rc, "client.id", client_id);
  SetOrThrow(rc, "log_level", "4");
  SetOrThrow(rc, "group.id", config.application_id + "-restore");
  SetOrThrow(rc, "enable.auto.commit", "false");
  SetOrThrow(rc, "enable.partition.eof", "true");
  SetOrThrow(rc, "isolation.level", "read_committed");
  SetOrThrow(rc, "fetch.max.bytes", "52428800");
  // Restores read to the end of a partition and then move on: a long-polling empty fetch at
  // the end would hold up the next assign and offset query on the same connection.
  SetOrThrow(rc, "fetch.wait.max.ms", "10");
  KafkaHandle consumer = NewKafkaHandle(RD_KAFKA_CONSUMER, rc);
  if (rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(consumer.get()))
    throw std::runtime_error(std::string("restore consumer: poll_set_consumer: ") +
                             rd_kafka_err2str(err));
  return consumer;
}

ChangelogReader::ChangelogReader(const StreamsConfig& config, TaskManager& tasks,
                                 ThreadFailure& failure)
    : config_(config), tasks_(tasks), failure_(failure) {}

void ChangelogReader::RestoreStep() {
  for (auto& [id, rt] : tasks_.tasks()) {
    if (rt.running) continue;
    auto done = rt.restorer->Step(std::chrono::milliseconds(200));
    if (!done.ok() && done.status().code() == state::Status::Code::kAborted) {
      // The broker no longer has the log this state came from (an embedded broker restarted):
      // the local state describes a history that is gone, so start the task from nothing.
      Log(LogLevel::kWarn, "state_discarded",
          {{"task", id.ToString()}, {"reason", done.status().message()}});
      TaskId keep = id;
      std::string dir = config_.state_dir + "/" + config_.application_id + "/" + keep.ToString();
      tasks_.CloseTask(keep, false);
      if (state::Status s = state::TaskState::Destroy(dir); !s.ok()) {
        // Reopened, the old state would be restored on top of a history that is gone.
        failure_.Fatal("cannot discard the state of task " + keep.ToString() + ": " + s.ToString());
        return;
      }
      tasks_.CreateTask(keep);
      return;  // the map changed
    }
    if (!done.ok()) {
      failure_.Fatal("restore of task " + id.ToString() + " failed: " + done.status().ToString());
      return;
    }
    if (*done) tasks_.StartRunning(rt);
    return;  // one task per step keeps the group consumer polled
  }
}

}  // namespace cm::topology
