#include "topology/runtime/task_manager.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "topology/common/log.h"
#include "topology/common/wall_clock.h"
#include "topology/kafka/kafka_client.h"
#include "topology/runtime/state_snapshot_listener.h"

namespace cm::topology {

TaskManager::TaskManager(const Topology& topology, const StreamsConfig& config, int thread_index,
                         state::StateResources& resources, rd_kafka_t* consumer,
                         rd_kafka_t* restore_consumer, RecordCollectorImpl& collector,
                         TaskCommitter& committer, StateWriter& writer, ThreadFailure& failure)
    : topology_(topology),
      config_(config),
      index_(thread_index),
      resources_(resources),
      consumer_(consumer),
      restore_consumer_(restore_consumer),
      collector_(collector),
      committer_(committer),
      failure_(failure),
      writer_(writer) {
  if (config.cache_max_bytes > 0)
    cache_ = std::make_unique<state::RecordCache>(config.cache_max_bytes);
}

bool TaskManager::HandleRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
  rd_kafka_t* rk = consumer_;
  switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS: {
      // Nothing is fetched for a task until its stores are restored, so its partitions join
      // the consumer's assignment only in StartRunning, at their sealed positions. The call
      // with no partitions completes the rebalance. Assigning here and pausing right after
      // loses the fetch start when librdkafka's thread is preempted between numbering its
      // start and queueing it (the pause outdates it; librdkafka issues #2190, #5591): the
      // partition would then never be fetched.
      auto none = NewPartitionList();
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, none.get())) {
        failure_.Fatal("incremental_assign failed: " + TakeErrorMessage(e));
        return false;
      }
      assigned_ = true;
      nlohmann::json assigned = nlohmann::json::array();
      std::vector<TaskId> created;
      for (int i = 0; i < parts->cnt; ++i) {
        auto sub = topology_.SubTopologyOfSource(parts->elems[i].topic);
        if (!sub) continue;
        TaskId id{*sub, parts->elems[i].partition};
        assigned.push_back(id.ToString());
        if (tasks_.count(id) == 0 && std::find(created.begin(), created.end(), id) == created.end())
          created.push_back(id);
      }
      const auto open_start = std::chrono::steady_clock::now();
      CreateTasks(created);
      if (failure_.deferred()) return false;  // a task's state did not open
      Log(LogLevel::kInfo, "tasks_assigned",
          {{"thread", index_},
           {"tasks", assigned},
           {"created", created.size()},
           {"openMs", std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - open_start)
                          .count()}});
      break;
    }
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
      return Revoke(parts, rd_kafka_assignment_lost(rk) != 0);
    default:
      // The group cannot say what this thread owns: its tasks close as after a lost assignment.
      Log(LogLevel::kError, "rebalance_error",
          {{"thread", index_}, {"error", rd_kafka_err2str(err)}});
      return Revoke(parts, true);
  }
  return true;
}

bool TaskManager::Revoke(rd_kafka_topic_partition_list_t* parts, bool lost) {
  lost = lost || failure_.failed();
  if (lost) {
    committer_.AbortAll(tasks_, "assignment lost");
  } else if (!committer_.CommitAll(tasks_)) {
    committer_.AbortAll(tasks_, "commit before revocation failed");
  }
  // A commit that failed the thread (its error waits for the poll to return) committed
  // nothing: the tasks close as after a lost assignment.
  lost = lost || failure_.deferred();
  auto unassign = NewPartitionList();
  nlohmann::json revoked = nlohmann::json::array();
  for (int i = 0; i < parts->cnt; ++i) {
    auto sub = topology_.SubTopologyOfSource(parts->elems[i].topic);
    if (!sub) continue;
    TaskId id{*sub, parts->elems[i].partition};
    auto it = tasks_.find(id);
    if (it == tasks_.end()) continue;
    revoked.push_back(id.ToString());
    // A task's partitions are assigned only while it runs (StartRunning); librdkafka refuses
    // the whole unassign if one partition is not assigned.
    if (it->second.running) {
      for (const auto& topic : it->second.topics)
        rd_kafka_topic_partition_list_add(unassign.get(), topic.c_str(), id.partition);
    }
    CloseTask(id, !lost);
  }
  if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(consumer_, unassign.get())) {
    // The tasks are closed but the consumer would go on fetching their partitions, and a
    // later assignment of them would fail: the thread's view of its partitions is wrong.
    failure_.Fatal("incremental_unassign of revoked partitions failed (thread " +
                   std::to_string(index_) + "): " + TakeErrorMessage(e));
    return false;
  }
  Log(LogLevel::kInfo, "tasks_revoked", {{"thread", index_}, {"tasks", revoked}, {"lost", lost}});
  return true;
}

std::string TaskManager::StateDirectory(TaskId id) const {
  return config_.state_dir + "/" + config_.application_id + "/" + id.ToString();
}

void TaskManager::CreateTasks(const std::vector<TaskId>& ids) {
  std::vector<state::TaskStateOptions> options;
  for (TaskId id : ids) {
    state::TaskStateOptions& so = options.emplace_back();
    so.directory = StateDirectory(id);
    so.stores = topology_.subtopologies().at(static_cast<size_t>(id.subtopology)).stores;
    so.resources = &resources_;
    so.cache = cache_.get();
  }
  auto states = state::TaskState::OpenAll(options);
  for (size_t i = 0; i < ids.size(); ++i) {
    const TaskId id = ids[i];
    if (!states[i].ok()) {
      failure_.Fatal("cannot open state of task " + id.ToString() + ": " +
                     states[i].status().ToString());
      return;  // the states opened are closed with `states`
    }
    const auto& sub = topology_.subtopologies().at(static_cast<size_t>(id.subtopology));
    TaskRuntime& rt = tasks_[id];
    rt.id = id;
    rt.topics = sub.source_topics;
    rt.collector = collector_.ForTask(rt);
    rt.task = std::make_unique<StreamTask>(topology_, id, std::move(states[i]).value(),
                                           *rt.collector, config_.dlq_topic, cache_.get());
    rt.restorer = std::make_unique<StateRestorer>(restore_consumer_, config_, topology_, id,
                                                  rt.task->state(), writer_);
    for (const auto& topic : rt.topics) by_partition_[{topic, id.partition}] = &rt;
  }
}

void TaskManager::CloseTask(TaskId id, bool clean) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  TaskRuntime& rt = it->second;
  // Before the query lock: the listener may be reading the task's stores through it.
  if (rt.running && config_.snapshot_listener) config_.snapshot_listener->OnTaskClosed(id);
  {
    std::unique_lock<std::shared_mutex> lock(query_mu_);  // waits for running queries
    queryable_.erase(id);
  }
  rt.restorer.reset();  // waits for its writes to the task's state
  if (!clean) rt.task->state().Abort();
  committer_.ForgetMark(id);  // the next owner, or a new incarnation here, restores without it
  rt.task->Close();
  for (const auto& topic : rt.topics) by_partition_.erase({topic, id.partition});
  tasks_.erase(it);  // closes the task's RocksDB; its files stay for the next owner here
}

void TaskManager::StartRunning(TaskRuntime& rt) {
  rt.changelog_positions = rt.restorer->changelog_positions();
  rt.changelog_gaps = rt.restorer->gaps();
  rt.published_until = rt.restorer->published_positions();
  rt.commit_position = rt.restorer->commit_position();
  rt.committed_positions = rt.restorer->input_positions();
  rt.positions = rt.committed_positions;
  if (const auto& unpublished = rt.restorer->unpublished()) committer_.Republish(rt, *unpublished);
  const int64_t stream_time = rt.restorer->stream_time();
  rt.restorer.reset();
  rt.task->Init(WallClockMs(), stream_time);
  // The task's partitions join the assignment now, at the positions of the last sealed commit
  // (the group's committed offset if it has none), so nothing below it is fetched. Nothing of
  // ours pauses or seeks them before they deliver a record (an abort seeks only tasks that
  // processed some), so no op of ours can outdate their fetch start.
  auto assign = NewPartitionList();
  for (const auto& topic : rt.topics) {
    auto pos = rt.committed_positions.find(topic);
    rd_kafka_topic_partition_list_add(assign.get(), topic.c_str(), rt.id.partition)->offset =
        pos == rt.committed_positions.end() ? RD_KAFKA_OFFSET_INVALID : pos->second;
  }
  if (rd_kafka_error_t* e = rd_kafka_incremental_assign(consumer_, assign.get())) {
    // A task left unassigned would look running and never process anything.
    failure_.Fatal("assign of task " + rt.id.ToString() + " failed: " + TakeErrorMessage(e));
    return;
  }
  // A pause this soon after the assign can outdate the fetch start too; for these partitions
  // either outcome is right, as they are not to be fetched again.
  auto finished = NewPartitionList();
  for (const auto& topic : rt.topics) {
    auto stop = config_.stop_offsets.find({topic, rt.id.partition});
    auto pos = rt.committed_positions.find(topic);
    if (stop != config_.stop_offsets.end() && pos != rt.committed_positions.end() &&
        pos->second >= stop->second) {
      rd_kafka_topic_partition_list_add(finished.get(), topic.c_str(), rt.id.partition);
    }
  }
  if (finished->cnt > 0) Pause(finished.get(), "pause of finished partitions");
  rt.running = true;
  {
    std::unique_lock<std::shared_mutex> lock(query_mu_);
    queryable_[rt.id] = &rt.task->state();
  }
  if (config_.snapshot_listener) {
    config_.snapshot_listener->OnTaskRunning(
        rt.id, rt.changelog_positions,
        [this, id = rt.id](const std::function<void(const ReadOnlyStores&)>& read) {
          std::shared_lock<std::shared_mutex> lock(query_mu_);
          auto it = queryable_.find(id);
          if (it == queryable_.end()) return false;
          read(ReadOnlyStores(*it->second));
          return true;
        });
  }
  Log(LogLevel::kInfo, "task_running",
      {{"task", rt.id.ToString()}, {"inputs", rt.committed_positions}});
}

void TaskManager::CloseAll(bool clean) {
  std::vector<TaskId> ids;
  for (auto& [id, rt] : tasks_) ids.push_back(id);
  for (auto id : ids) CloseTask(id, clean);
}

TaskRuntime* TaskManager::RunningTask(const std::string& topic, int32_t partition) {
  auto it = by_partition_.find({topic, partition});
  if (it == by_partition_.end() || !it->second->running) return nullptr;
  return it->second;
}

void TaskManager::ReachStop(const std::string& topic, int32_t partition, int64_t stop) {
  TaskRuntime* task = RunningTask(topic, partition);
  if (task == nullptr) return;
  TaskRuntime& rt = *task;
  auto pos = rt.positions.find(topic);
  if (pos == rt.positions.end() || pos->second < stop) {
    rt.positions[topic] = stop;
    rt.dirty = true;
  }
  auto list = NewPartitionList();
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
  Pause(list.get(), "pause at the stop offset");
}

void TaskManager::Pause(rd_kafka_topic_partition_list_t* parts, const char* what) {
  // Logged, not fatal: what a partition left fetching delivers is dropped (RunningTask is null
  // while restoring; ProcessMessage checks the stop offset of every record), so state is right.
  rd_kafka_resp_err_t err = rd_kafka_pause_partitions(consumer_, parts);
  std::string errors = err ? rd_kafka_err2str(err) : PartitionErrors(parts);
  if (!errors.empty())
    Log(LogLevel::kWarn, "pause_failed", {{"thread", index_}, {"what", what}, {"error", errors}});
}

std::string TaskManager::PartitionErrors(const rd_kafka_topic_partition_list_t* parts) {
  std::string out;
  for (int i = 0; i < parts->cnt; ++i) {
    const auto& p = parts->elems[i];
    if (p.err == RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    if (!out.empty()) out += "; ";
    out +=
        std::string(p.topic) + "[" + std::to_string(p.partition) + "]: " + rd_kafka_err2str(p.err);
  }
  return out;
}

bool TaskManager::AnyRestoring() const {
  return std::any_of(tasks_.begin(), tasks_.end(), [](auto& e) { return !e.second.running; });
}

bool TaskManager::Query(const TaskId& task,
                        const std::function<void(const ReadOnlyStores&)>& query) const {
  std::shared_lock<std::shared_mutex> lock(query_mu_);
  auto it = queryable_.find(task);
  if (it == queryable_.end()) return false;
  query(ReadOnlyStores(*it->second));
  return true;
}

void TaskManager::AddStatus(ThreadStatus& s) {
  for (auto& [id, rt] : tasks_) {
    TaskStatus t;
    t.task = id.ToString();
    t.partition = id.partition;
    t.committed_inputs = rt.committed_positions;
    t.running = rt.running;
    if (rt.restorer) {
      t.restored_records = rt.restorer->restored_records();
      t.restore_total_records = rt.restorer->total_records();
    }
    t.processed = rt.task->processed();
    s.dlq += rt.task->dropped_to_dlq();
    for (const auto& topic : rt.topics) {
      int64_t low = 0, high = 0;
      if (rd_kafka_get_watermark_offsets(consumer_, topic.c_str(), id.partition, &low, &high) ==
              RD_KAFKA_RESP_ERR_NO_ERROR &&
          high >= 0) {
        auto pos = rt.positions.find(topic);
        t.lag += std::max<int64_t>(0, high - (pos == rt.positions.end() ? low : pos->second));
      }
    }
    t.store_entries = rt.task->state().ApproximateNumEntries();
    t.store_bytes = rt.task->state().ApproximateSizeBytes();
    s.tasks.push_back(std::move(t));
  }
  if (cache_ != nullptr) s.cache = cache_->stats();
}

}  // namespace cm::topology
