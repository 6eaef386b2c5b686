#pragma once

#include <string>

#include "topology/kafka/kafka_client.h"
#include "topology/runtime/streams_config.h"
#include "topology/runtime/task_manager.h"
#include "topology/runtime/thread_failure.h"

namespace cm::topology {

// Drives the restoration of a stream thread's restoring tasks (Kafka Streams'
// StoreChangelogReader). Each task's StateRestorer reads its commit log and changelogs; the
// reader decides which task gets the restore consumer next and what happens when it is done.
class ChangelogReader {
 public:
  // The consumer restores and republish scans read with: not in the group, read_committed,
  // partition EOF reported, short fetch waits. The stream thread owns it, as the task
  // manager's restorers and the committer use it too.
  static KafkaHandle NewRestoreConsumer(const StreamsConfig& config, const std::string& client_id);

  ChangelogReader(const StreamsConfig& config, TaskManager& tasks, ThreadFailure& failure);

  // Restores the first restoring task for about 200 ms; one task per step keeps the group
  // consumer polled. A restored task starts running. A task whose local state describes a log
  // the broker no longer has (an embedded broker restarted) is wiped and created again.
  void RestoreStep();

 private:
  const StreamsConfig& config_;
  TaskManager& tasks_;
  ThreadFailure& failure_;
};

}  // namespace cm::topology
