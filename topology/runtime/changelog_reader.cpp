#include "topology/runtime/changelog_reader.h"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "topology/common/log.h"
#include "topology/kafka/kafka_error.h"

namespace cm::topology {

namespace {
constexpr std::chrono::milliseconds kStepBudget{200};
}  // namespace

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
  // As the group consumer: librdkafka 2.0 stops fetching for about a second once this many
  // messages are queued, which many partitions read at once reach at once.
  SetOrThrow(rc, "queued.min.messages", "1000000");
  KafkaHandle consumer = NewKafkaHandle(RD_KAFKA_CONSUMER, rc);
  if (rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(consumer.get()))
    throw std::runtime_error(std::string("restore consumer: poll_set_consumer: ") +
                             rd_kafka_err2str(err));
  return consumer;
}

ChangelogReader::ChangelogReader(const StreamsConfig& config, const std::string& client_id,
                                 TaskManager& tasks, ThreadFailure& failure)
    : tasks_(tasks),
      failure_(failure),
      consumer_(NewRestoreConsumer(config, client_id)),
      topics_(consumer_.get()),
      batch_(consumer_.get()) {}

ChangelogReader::~ChangelogReader() {
  batch_.Clear();
  if (rd_kafka_resp_err_t err = rd_kafka_consumer_close(consumer_.get())) {
    Log(LogLevel::kWarn, "changelog_consumer_close_failed", {{"error", rd_kafka_err2str(err)}});
  }
}

void ChangelogReader::RestoreStep() {
  const auto deadline = std::chrono::steady_clock::now() + kStepBudget;
  do {
    if (!PrepareNew() || !StartRestored()) return;
    if (!tasks_.AnyRestoring()) {
      Unassign();
      FlushRestored();
      return;
    }
    if (!Assign() || !Poll(deadline)) return;
  } while (std::chrono::steady_clock::now() < deadline);
}

bool ChangelogReader::PrepareNew() {
  // The broker's offsets for every new restorer at once, not a few round trips per task.
  std::vector<TopicPartition> logs;
  StateRestorer* asker = nullptr;
  for (auto& [id, rt] : tasks_.tasks()) {
    if (rt.running || rt.restorer->prepared()) continue;
    for (auto& log : rt.restorer->Logs()) logs.push_back(std::move(log));
    asker = rt.restorer.get();
  }
  if (asker == nullptr) return true;
  auto offsets = asker->QueryOffsets(logs);
  if (!offsets.ok()) {
    failure_.Fatal("restore failed: " + offsets.status().ToString());
    return false;
  }
  for (auto& [id, rt] : tasks_.tasks()) {
    if (rt.running || rt.restorer->prepared()) continue;
    state::Status s = rt.restorer->Prepare(*offsets);
    if (s.code() == state::Status::Code::kAborted) {
      // The broker no longer has the log this state came from (an embedded broker restarted):
      // the local state describes a history that is gone, so start the task from nothing.
      Log(LogLevel::kWarn, "state_discarded", {{"task", id.ToString()}, {"reason", s.message()}});
      TaskId keep = id;
      tasks_.CloseTask(keep, false);
      if (state::Status d = state::TaskState::Destroy(tasks_.StateDirectory(keep)); !d.ok()) {
        // Reopened, the old state would be restored on top of a history that is gone.
        failure_.Fatal("cannot discard the state of task " + keep.ToString() + ": " + d.ToString());
        return false;
      }
      tasks_.CreateTasks({keep});
      return false;  // the map changed; the next step prepares the new task
    }
    if (!s.ok()) {
      failure_.Fatal("restore of task " + id.ToString() + " failed: " + s.ToString());
      return false;
    }
    reassign_ = true;
  }
  return true;
}

bool ChangelogReader::StartRestored() {
  for (auto& [id, rt] : tasks_.tasks()) {
    if (rt.running || !rt.restorer->read_all()) continue;
    if (state::Status s = rt.restorer->Finish(); !s.ok()) {
      failure_.Fatal("restore of task " + id.ToString() + " failed: " + s.ToString());
      return false;
    }
    tasks_.StartRunning(rt);
    restored_.push_back(id);
  }
  return true;
}

void ChangelogReader::FlushRestored() {
  for (const TaskId& id : restored_) {
    auto it = tasks_.tasks().find(id);
    if (it == tasks_.tasks().end()) continue;  // closed since, which flushed it
    if (state::Status s = it->second.task->state().Flush(false); !s.ok()) {
      failure_.Fatal("flush of restored task " + id.ToString() + " failed: " + s.ToString());
      return;
    }
  }
  restored_.clear();
}

bool ChangelogReader::Assign() {
  // Commit logs and changelogs together: a changelog record waits in its restorer until a seal
  // (or the end of the commit log) decides whether its commit sealed.
  std::map<PartitionKey, std::pair<TaskId, int64_t>> want;  // -> task, offset to read from
  for (auto& [id, rt] : tasks_.tasks()) {
    if (rt.running) continue;
    for (const RestoreRead& r : rt.restorer->Reads())
      want.emplace(PartitionKey{r.topic, r.partition}, std::pair{id, r.from});
  }
  // Partitions read to their end stay assigned and idle until the set must change.
  const bool changed = reassign_ || std::any_of(want.begin(), want.end(), [&](const auto& w) {
                         return !assigned_.contains(w.first);
                       });
  if (!changed) return true;
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(want.size())));
  held_.clear();
  for (const auto& [key, w] : want) {
    topics_.Get(key.first);  // its leader is asked for now, not at the next metadata refresh
    if (tasks_.tasks().at(w.first).restorer->Waiting(key.first)) {
      held_[w.first].emplace_back(key, w.second);
      continue;
    }
    rd_kafka_topic_partition_list_add(list.get(), key.first.c_str(), key.second)->offset = w.second;
  }
  ResumeAll();  // librdkafka keeps a partition paused across assignments
  if (rd_kafka_resp_err_t err = rd_kafka_assign(consumer_.get(), list.get())) {
    failure_.Fatal(std::string("restore: cannot assign the changelog partitions: ") +
                   rd_kafka_err2str(err));
    return false;
  }
  assigned_.clear();
  for (const auto& [key, w] : want) assigned_[key] = w.first;
  reassign_ = false;
  return true;
}

bool ChangelogReader::AssignDecided(const TaskId& task, StateRestorer& restorer) {
  auto it = held_.find(task);
  if (it == held_.end()) return true;
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(it->second.size())));
  std::erase_if(it->second, [&](const std::pair<PartitionKey, int64_t>& held) {
    if (restorer.Waiting(held.first.first)) return false;
    rd_kafka_topic_partition_list_add(list.get(), held.first.first.c_str(), held.first.second)
        ->offset = held.second;
    return true;
  });
  if (it->second.empty()) held_.erase(it);
  if (list->cnt == 0) return true;
  // The rest of the assignment goes on fetching; the new partitions start after it.
  if (rd_kafka_error_t* error = rd_kafka_incremental_assign(consumer_.get(), list.get())) {
    failure_.Fatal("restore: cannot assign a changelog partition: " + TakeErrorMessage(error));
    return false;
  }
  return true;
}

void ChangelogReader::Pause(const PartitionKey& key, const TaskId& task) {
  std::vector<PartitionKey>& paused = paused_[task];
  if (std::find(paused.begin(), paused.end(), key) != paused.end()) return;
  PartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), key.first.c_str(), key.second);
  if (rd_kafka_resp_err_t err = rd_kafka_pause_partitions(consumer_.get(), list.get())) {
    // Reading on only costs memory. Counted as paused all the same, so that the warning is
    // not repeated for each record; resuming a partition that is not paused does nothing.
    Log(LogLevel::kWarn, "restore_pause_failed",
        {{"topic", key.first}, {"error", rd_kafka_err2str(err)}});
  }
  paused.push_back(key);
}

void ChangelogReader::ResumeDecided(const TaskId& task, StateRestorer& restorer) {
  auto it = paused_.find(task);
  if (it == paused_.end()) return;
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(it->second.size())));
  std::erase_if(it->second, [&](const PartitionKey& key) {
    if (restorer.Waiting(key.first)) return false;
    rd_kafka_topic_partition_list_add(list.get(), key.first.c_str(), key.second);
    return true;
  });
  if (it->second.empty()) paused_.erase(it);
  Resume(list.get());
}

void ChangelogReader::ResumeAll() {
  PartitionList list(rd_kafka_topic_partition_list_new(static_cast<int>(paused_.size())));
  for (const auto& [task, keys] : paused_) {
    for (const auto& key : keys)
      rd_kafka_topic_partition_list_add(list.get(), key.first.c_str(), key.second);
  }
  paused_.clear();
  Resume(list.get());
}

void ChangelogReader::Resume(rd_kafka_topic_partition_list_t* list) {
  if (list->cnt == 0) return;
  if (rd_kafka_resp_err_t err = rd_kafka_resume_partitions(consumer_.get(), list)) {
    // The partition stays paused: its task would never finish restoring.
    failure_.Fatal(std::string("restore: cannot resume a changelog partition: ") +
                   rd_kafka_err2str(err));
  }
}

bool ChangelogReader::Poll(std::chrono::steady_clock::time_point deadline) {
  Run run;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return true;
    batch_.Poll(std::min(left, std::chrono::milliseconds(100)));
    bool ended = false;
    for (size_t i = 0; i < batch_.size(); ++i) {
      switch (Apply(batch_[i], run)) {
        case Applied::kNext:
          break;
        case Applied::kEnded:
          ended = true;
          break;
        case Applied::kFailed:
          return false;
        case Applied::kReassign:
          // The rest of the batch is fetched again from the offsets of the new assignment.
          batch_.Clear();
          reassign_ = true;
          return true;
      }
    }
    // A partition read to its end may start a task: back to the caller.
    if (ended) return true;
  }
}

ChangelogReader::Applied ChangelogReader::Apply(const rd_kafka_message_t& m, Run& run) {
  if (m.rkt == nullptr) return Applied::kNext;
  // Its topic name and entry are looked up once a run of records from one partition.
  if (m.rkt != run.topic_handle || m.partition != run.partition) {
    run.topic_handle = m.rkt;
    run.partition = m.partition;
    run.topic = rd_kafka_topic_name(m.rkt);
    run.assigned = assigned_.find({run.topic, m.partition});
  }
  if (run.assigned == assigned_.end()) return Applied::kNext;  // left from an earlier assignment
  const std::string& topic = run.topic;
  const TaskId task_id = run.assigned->second;
  auto task = tasks_.tasks().find(task_id);
  // A task closed since the assignment, or closed and created again (not yet prepared).
  if (task == tasks_.tasks().end() || task->second.running || !task->second.restorer->prepared()) {
    return Applied::kNext;
  }
  StateRestorer& restorer = *task->second.restorer;
  auto kind = ClassifyConsumed(m, topic);
  if (kind.ok() && *kind == ConsumedMessage::kSkip) return Applied::kNext;
  state::Status s = kind.status();
  bool ended = false;
  if (kind.ok() && *kind == ConsumedMessage::kEnd) {
    s = restorer.EndOfPartition(topic);
    ended = true;
  } else if (kind.ok()) {
    s = restorer.Apply(m);
    ended = restorer.ReadToEnd(topic);
  }
  if (!s.ok()) {
    failure_.Fatal("restore of task " + task_id.ToString() + " failed: " + s.ToString());
    return Applied::kFailed;
  }
  // Its commit log is read again from an earlier offset (Reads()): assign anew.
  if (restorer.TakeRewind()) return Applied::kReassign;
  // Undecided changelog records wait for the commit log; a seal may have decided them.
  if (restorer.Waiting(topic)) Pause(run.assigned->first, task_id);
  if (!paused_.empty()) ResumeDecided(task_id, restorer);
  if (!held_.empty() && !AssignDecided(task_id, restorer)) return Applied::kFailed;
  return ended ? Applied::kEnded : Applied::kNext;
}

void ChangelogReader::Unassign() {
  held_.clear();
  if (assigned_.empty()) return;
  ResumeAll();
  if (rd_kafka_resp_err_t err = rd_kafka_assign(consumer_.get(), nullptr)) {
    Log(LogLevel::kWarn, "unassign_failed", {{"error", rd_kafka_err2str(err)}});
  }
  assigned_.clear();
}

}  // namespace cm::topology
