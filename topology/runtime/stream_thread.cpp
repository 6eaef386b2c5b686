#include "topology/runtime/stream_thread.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <shared_mutex>
#include <stdexcept>

#include "topology/common/log.h"
#include "topology/common/wall_clock.h"
#include "topology/kafka/kafka_client.h"
#include "topology/kafka/kafka_error.h"
#include "topology/kafka/partitioner.h"
#include "topology/runtime/outbox.h"
#include "topology/runtime/record_collector_impl.h"
#include "topology/runtime/state_restorer.h"
#include "topology/runtime/state_snapshot_listener.h"
#include "topology/runtime/stream_producer.h"
#include "topology/runtime/stream_task.h"
#include "topology/runtime/task_committer.h"
#include "topology/runtime/task_runtime.h"
#include "topology/runtime/thread_failure.h"

namespace cm::topology {

class StreamThread::Impl final {
 public:
  Impl(const Topology& topology, const StreamsConfig& config, int index,
       state::StateResources& resources);
  ~Impl();

  void Run();
  // Leaves the group and closes every task. Clean: commits first. Otherwise (after a failure)
  // buffered work is dropped; the next owner resumes from the last sealed commit.
  void Close(bool clean);

  std::atomic<bool> stop_{false};
  mutable std::mutex status_mu_;
  ThreadStatus status_;
  // Running tasks that HTTP threads may query; a task leaves it before it closes.
  mutable std::shared_mutex query_mu_;
  std::map<TaskId, state::TaskState*> queryable_;

 private:
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* parts, void* opaque);
  void HandleRebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);

  void CreateTask(TaskId id);
  void CloseTask(TaskId id, bool clean);
  void RestoreStep();
  void StartRunning(TaskRuntime& rt);
  void ProcessMessage(rd_kafka_message_t* m);
  // A bounded run: `topic`/`partition` got to its stop offset; the task's position moves there
  // (past control records too) and the partition is paused.
  void ReachStop(const std::string& topic, int32_t partition, int64_t stop);
  void RefreshStatus();

  const Topology& topology_;
  const StreamsConfig& config_;
  int index_;
  ThreadFailure failure_;
  state::StateResources& resources_;
  KafkaHandle consumer_;
  KafkaHandle restore_consumer_;
  std::unique_ptr<StreamProducer> producer_;
  std::unique_ptr<RecordCollectorImpl> collector_;
  std::unique_ptr<TaskCommitter> committer_;
  bool assigned_ = false;
  bool closed_ = false;
  TaskMap tasks_;
  std::map<std::pair<std::string, int32_t>, TaskRuntime*> by_partition_;
  std::chrono::steady_clock::time_point last_status_ = std::chrono::steady_clock::now();
  uint64_t processed_ = 0;
};

StreamThread::Impl::Impl(const Topology& topology, const StreamsConfig& config, int index,
                         state::StateResources& resources)
    : topology_(topology), config_(config), index_(index), failure_(index), resources_(resources) {
  const std::string client =
      config.application_id + "-" + config.instance_id + "-StreamThread-" + std::to_string(index);
  std::string writer_id = client + "-" + std::to_string(WallClockMs());
  auto common = [&](rd_kafka_conf_t* conf) {
    SetOrThrow(conf, "bootstrap.servers", config.bootstrap_servers);
    SetOrThrow(conf, "client.id", client);
    SetOrThrow(conf, "log_level", "4");
  };

  rd_kafka_conf_t* cc = rd_kafka_conf_new();
  common(cc);
  SetOrThrow(cc, "group.id", config.application_id);
  SetOrThrow(cc, "partition.assignment.strategy", "cooperative-sticky");
  SetOrThrow(cc, "enable.auto.commit", "false");
  SetOrThrow(cc, "enable.auto.offset.store", "false");
  SetOrThrow(cc, "auto.offset.reset", "earliest");
  SetOrThrow(cc, "isolation.level", "read_committed");
  SetOrThrow(cc, "session.timeout.ms", std::to_string(config.session_timeout_ms));
  SetOrThrow(cc, "heartbeat.interval.ms", std::to_string(config.heartbeat_interval_ms));
  SetOrThrow(cc, "max.poll.interval.ms", std::to_string(config.max_poll_interval_ms));
  // librdkafka 2.0 stops fetching once this many messages are queued and looks again only
  // about a second later; a thread that drains 100k records in 0.3 s would idle the rest.
  SetOrThrow(cc, "queued.min.messages", "1000000");
  // A bounded run learns from the end-of-partition event that an idle partition is done.
  if (!config.stop_offsets.empty()) SetOrThrow(cc, "enable.partition.eof", "true");
  for (const auto& [k, v] : config.consumer_overrides) SetOrThrow(cc, k, v);
  rd_kafka_conf_set_rebalance_cb(cc, &Impl::OnRebalance);
  rd_kafka_conf_set_opaque(cc, this);
  consumer_ = NewKafkaHandle(RD_KAFKA_CONSUMER, cc);
  rd_kafka_poll_set_consumer(consumer_.get());

  rd_kafka_conf_t* rc = rd_kafka_conf_new();
  common(rc);
  SetOrThrow(rc, "group.id", config.application_id + "-restore");
  SetOrThrow(rc, "enable.auto.commit", "false");
  SetOrThrow(rc, "enable.partition.eof", "true");
  SetOrThrow(rc, "isolation.level", "read_committed");
  SetOrThrow(rc, "fetch.max.bytes", "52428800");
  // Restores read to the end of a partition and then move on: a long-polling empty fetch at
  // the end would hold up the next assign and offset query on the same connection.
  SetOrThrow(rc, "fetch.wait.max.ms", "10");
  restore_consumer_ = NewKafkaHandle(RD_KAFKA_CONSUMER, rc);
  rd_kafka_poll_set_consumer(restore_consumer_.get());

  producer_ = std::make_unique<StreamProducer>(config, client, failure_);
  collector_ = std::make_unique<RecordCollectorImpl>(topology, config, *producer_, failure_);
  committer_ = std::make_unique<TaskCommitter>(topology, config, index, std::move(writer_id),
                                               *producer_, *collector_, consumer_.get(),
                                               restore_consumer_.get(), failure_);
  status_.index = index;
}

StreamThread::Impl::~Impl() {
  // The consumer's revoke callback uses the tasks: close while every member is still alive.
  try {
    Close(false);
  } catch (const std::exception& e) {
    Log(LogLevel::kError, "stream_thread_close_failed", {{"thread", index_}, {"error", e.what()}});
  }
}

void StreamThread::Impl::OnRebalance(rd_kafka_t*, rd_kafka_resp_err_t err,
                                     rd_kafka_topic_partition_list_t* parts, void* opaque) {
  auto* self = static_cast<Impl*>(opaque);
  self->failure_.set_in_callback(true);
  try {
    self->HandleRebalance(err, parts);
  } catch (const std::exception& e) {
    self->failure_.Defer(e.what());
  }
  self->failure_.set_in_callback(false);
}

void StreamThread::Impl::HandleRebalance(rd_kafka_resp_err_t err,
                                         rd_kafka_topic_partition_list_t* parts) {
  rd_kafka_t* rk = consumer_.get();
  switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS: {
      if (rd_kafka_error_t* e = rd_kafka_incremental_assign(rk, parts)) {
        std::string what = rd_kafka_error_string(e);
        rd_kafka_error_destroy(e);
        failure_.Fatal("incremental_assign failed: " + what);
        return;
      }
      // Nothing is fetched for a task until its stores are restored.
      rd_kafka_pause_partitions(rk, parts);
      assigned_ = true;
      nlohmann::json assigned = nlohmann::json::array();
      for (int i = 0; i < parts->cnt; ++i) {
        auto sub = topology_.SubTopologyOfSource(parts->elems[i].topic);
        if (!sub) continue;
        TaskId id{*sub, parts->elems[i].partition};
        assigned.push_back(id.ToString());
        if (tasks_.count(id) == 0) CreateTask(id);
      }
      Log(LogLevel::kInfo, "tasks_assigned", {{"thread", index_}, {"tasks", assigned}});
      break;
    }
    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS: {
      bool lost = rd_kafka_assignment_lost(rk) != 0 || failure_.failed();
      if (lost) {
        committer_->AbortAll(tasks_, "assignment lost");
      } else if (!committer_->CommitAll(tasks_)) {
        committer_->AbortAll(tasks_, "commit before revocation failed");
      }
      auto unassign = NewPartitionList();
      nlohmann::json revoked = nlohmann::json::array();
      for (int i = 0; i < parts->cnt; ++i) {
        auto sub = topology_.SubTopologyOfSource(parts->elems[i].topic);
        if (!sub) continue;
        TaskId id{*sub, parts->elems[i].partition};
        auto it = tasks_.find(id);
        if (it == tasks_.end()) continue;
        revoked.push_back(id.ToString());
        for (const auto& topic : it->second.topics) {
          rd_kafka_topic_partition_list_add(unassign.get(), topic.c_str(), id.partition);
        }
        CloseTask(id, !lost);
      }
      if (rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, unassign.get())) {
        Log(LogLevel::kWarn, "incremental_unassign_failed", {{"error", rd_kafka_error_string(e)}});
        rd_kafka_error_destroy(e);
      }
      Log(LogLevel::kInfo, "tasks_revoked",
          {{"thread", index_}, {"tasks", revoked}, {"lost", lost}});
      break;
    }
    default:
      Log(LogLevel::kError, "rebalance_error", {{"error", rd_kafka_err2str(err)}});
      rd_kafka_incremental_unassign(rk, parts);
      break;
  }
  RefreshStatus();
}

void StreamThread::Impl::CreateTask(TaskId id) {
  const auto& sub = topology_.subtopologies().at(static_cast<size_t>(id.subtopology));
  state::TaskStateOptions so;
  so.directory = config_.state_dir + "/" + config_.application_id + "/" + id.ToString();
  so.stores = sub.stores;
  so.resources = &resources_;
  auto state = state::TaskState::Open(so);
  if (!state.ok()) {
    failure_.Fatal("cannot open state of task " + id.ToString() + ": " + state.status().ToString());
    return;
  }
  TaskRuntime& rt = tasks_[id];
  rt.id = id;
  rt.topics = sub.source_topics;
  rt.collector = collector_->ForTask(rt);
  rt.task = std::make_unique<StreamTask>(topology_, id, std::move(state).value(), *rt.collector,
                                         config_.dlq_topic);
  rt.restorer = std::make_unique<StateRestorer>(restore_consumer_.get(), config_, topology_, id,
                                                rt.task->state());
  for (const auto& topic : rt.topics) by_partition_[{topic, id.partition}] = &rt;
}

void StreamThread::Impl::CloseTask(TaskId id, bool clean) {
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  TaskRuntime& rt = it->second;
  // Before the query lock: the listener may be reading the task's stores through it.
  if (rt.running && config_.snapshot_listener) config_.snapshot_listener->OnTaskClosed(id);
  {
    std::unique_lock<std::shared_mutex> lock(query_mu_);  // waits for running queries
    queryable_.erase(id);
  }
  if (!clean) rt.task->state().Abort();
  rt.task->Close();
  for (const auto& topic : rt.topics) by_partition_.erase({topic, id.partition});
  tasks_.erase(it);  // closes the task's RocksDB; its files stay for the next owner here
}

void StreamThread::Impl::RestoreStep() {
  for (auto& [id, rt] : tasks_) {
    if (rt.running) continue;
    auto done = rt.restorer->Step(std::chrono::milliseconds(200));
    if (!done.ok() && done.status().code() == state::Status::Code::kAborted) {
      // The broker no longer has the log this state came from (an embedded broker restarted):
      // the local state describes a history that is gone, so start the task from nothing.
      Log(LogLevel::kWarn, "state_discarded",
          {{"task", id.ToString()}, {"reason", done.status().message()}});
      TaskId keep = id;
      std::string dir = config_.state_dir + "/" + config_.application_id + "/" + keep.ToString();
      CloseTask(keep, false);
      state::TaskState::Destroy(dir);
      CreateTask(keep);
      return;  // the map changed
    }
    if (!done.ok()) {
      failure_.Fatal("restore of task " + id.ToString() + " failed: " + done.status().ToString());
      return;
    }
    if (*done) StartRunning(rt);
    return;  // one task per step keeps the group consumer polled
  }
}

void StreamThread::Impl::StartRunning(TaskRuntime& rt) {
  rt.changelog_positions = rt.restorer->changelog_positions();
  rt.published_until = rt.restorer->published_positions();
  rt.commit_position = rt.restorer->commit_position();
  rt.committed_positions = rt.restorer->input_positions();
  rt.positions = rt.committed_positions;
  if (const auto& unpublished = rt.restorer->unpublished()) committer_->Republish(rt, *unpublished);
  rt.restorer.reset();
  rt.task->Init(WallClockMs());
  // The assignment topic is already assigned (paused); co-partitioned topics join now.
  auto seek = NewPartitionList();
  auto extra = NewPartitionList();
  auto resume = NewPartitionList();
  for (size_t i = 0; i < rt.topics.size(); ++i) {
    const std::string& topic = rt.topics[i];
    auto pos = rt.committed_positions.find(topic);
    int64_t offset = pos == rt.committed_positions.end() ? RD_KAFKA_OFFSET_INVALID : pos->second;
    if (i == 0) {
      rd_kafka_topic_partition_list_add(resume.get(), topic.c_str(), rt.id.partition);
      if (offset != RD_KAFKA_OFFSET_INVALID) {
        rd_kafka_topic_partition_list_add(seek.get(), topic.c_str(), rt.id.partition)->offset =
            offset;
      }
    } else {
      rd_kafka_topic_partition_list_add(extra.get(), topic.c_str(), rt.id.partition)->offset =
          offset;
    }
  }
  if (seek->cnt > 0) {
    // Asynchronous (timeout 0): the seek is queued ahead of the resume below, and its version
    // barrier already hides anything fetched before it. A blocking seek timed out when the
    // partition was being revoked under load, and that failed the whole stream thread.
    if (rd_kafka_error_t* e = rd_kafka_seek_partitions(consumer_.get(), seek.get(), 0)) {
      std::string what = rd_kafka_error_string(e);
      rd_kafka_error_destroy(e);
      failure_.Fatal("seek failed: " + what);
      return;
    }
  }
  if (extra->cnt > 0) {
    if (rd_kafka_error_t* e = rd_kafka_incremental_assign(consumer_.get(), extra.get())) {
      std::string what = rd_kafka_error_string(e);
      rd_kafka_error_destroy(e);
      failure_.Fatal("assign of co-partitioned topics failed: " + what);
      return;
    }
  }
  rd_kafka_resume_partitions(consumer_.get(), resume.get());
  auto finished = NewPartitionList();
  for (const auto& topic : rt.topics) {
    auto stop = config_.stop_offsets.find({topic, rt.id.partition});
    auto pos = rt.committed_positions.find(topic);
    if (stop != config_.stop_offsets.end() && pos != rt.committed_positions.end() &&
        pos->second >= stop->second) {
      rd_kafka_topic_partition_list_add(finished.get(), topic.c_str(), rt.id.partition);
    }
  }
  if (finished->cnt > 0) rd_kafka_pause_partitions(consumer_.get(), finished.get());
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

void StreamThread::Impl::ProcessMessage(rd_kafka_message_t* m) {
  if (!config_.stop_offsets.empty() && m->rkt != nullptr &&
      (m->err == RD_KAFKA_RESP_ERR_NO_ERROR || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)) {
    auto stop = config_.stop_offsets.find({rd_kafka_topic_name(m->rkt), m->partition});
    if (stop != config_.stop_offsets.end() && m->offset >= stop->second) {
      ReachStop(stop->first.first, m->partition, stop->second);
      return;
    }
  }
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    KafkaErrorAction action = ClassifyKafkaError(m->err);
    switch (action) {
      case KafkaErrorAction::kIgnore:
      case KafkaErrorAction::kRetry:
        return;
      case KafkaErrorAction::kAbortCommit:
        Log(LogLevel::kWarn, "consume_error", {{"error", rd_kafka_message_errstr(m)}});
        return;
      case KafkaErrorAction::kFatal:
        failure_.Fatal(std::string("consumer error: ") + rd_kafka_message_errstr(m));
        return;
    }
  }
  const char* topic = rd_kafka_topic_name(m->rkt);
  auto it = by_partition_.find({topic, m->partition});
  if (it == by_partition_.end() || !it->second->running) return;  // re-read after restore
  TaskRuntime& rt = *it->second;
  Record r;
  if (m->key != nullptr) r.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) r.value.assign(static_cast<const char*>(m->payload), m->len);
  r.timestamp_ms = rd_kafka_message_timestamp(m, nullptr);
  r.topic = topic;
  r.partition = m->partition;
  r.offset = m->offset;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* val;
    size_t size;
    for (size_t i = 0;
         rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      r.headers.push_back({name, val ? std::string(static_cast<const char*>(val), size) : ""});
    }
  }
  if (rt.committed_positions.count(r.topic) == 0) rt.committed_positions[r.topic] = m->offset;
  collector_->BeginInput(rt, r);
  rt.task->Process(r);
  collector_->EndInput(rt);
  rt.positions[r.topic] = m->offset + 1;
  rt.dirty = true;
  ++processed_;
  committer_->RecordProcessed();
}

void StreamThread::Impl::ReachStop(const std::string& topic, int32_t partition, int64_t stop) {
  auto it = by_partition_.find({topic, partition});
  if (it == by_partition_.end() || !it->second->running) return;
  TaskRuntime& rt = *it->second;
  auto pos = rt.positions.find(topic);
  if (pos == rt.positions.end() || pos->second < stop) {
    rt.positions[topic] = stop;
    rt.dirty = true;
  }
  auto list = NewPartitionList();
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition);
  rd_kafka_pause_partitions(consumer_.get(), list.get());
}

void StreamThread::Impl::RefreshStatus() {
  ThreadStatus s;
  s.index = index_;
  s.assigned = assigned_;
  s.processed = processed_;
  s.produced = producer_->produced();
  s.replayed_outputs_dropped = collector_->replayed_outputs_dropped();
  committer_->AddStatus(s);
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
      if (rd_kafka_get_watermark_offsets(consumer_.get(), topic.c_str(), id.partition, &low,
                                         &high) == RD_KAFKA_RESP_ERR_NO_ERROR &&
          high >= 0) {
        auto pos = rt.positions.find(topic);
        t.lag += std::max<int64_t>(0, high - (pos == rt.positions.end() ? low : pos->second));
      }
    }
    for (const auto& store : rt.task->state().stores()) {
      t.store_entries += rt.task->state().ApproximateNumEntries(store.name);
    }
    t.store_bytes = rt.task->state().ApproximateSizeBytes();
    s.tasks.push_back(std::move(t));
  }
  std::lock_guard<std::mutex> lock(status_mu_);
  status_ = std::move(s);
}

void StreamThread::Impl::Run() {
  std::vector<std::string> subscription;
  for (const auto& sub : topology_.subtopologies())
    subscription.push_back(sub.source_topics.front());
  auto list = NewPartitionList();
  for (const auto& topic : subscription) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  }
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer_.get(), list.get())) {
    failure_.Fatal(std::string("subscribe failed: ") + rd_kafka_err2str(err));
  }
  Log(LogLevel::kInfo, "stream_thread_started",
      {{"thread", index_}, {"subscription", subscription}});
  while (!stop_.load(std::memory_order_relaxed)) {
    bool restoring =
        std::any_of(tasks_.begin(), tasks_.end(), [](auto& e) { return !e.second.running; });
    if (restoring) RestoreStep();
    // Drain what is fetched, up to a bound, then look after commits and punctuation.
    for (int i = 0; i < 10'000; ++i) {
      rd_kafka_message_t* m =
          rd_kafka_consumer_poll(consumer_.get(), i == 0 && !restoring ? 50 : 0);
      failure_.RaiseDeferred();
      if (m == nullptr) break;
      ProcessMessage(m);
      rd_kafka_message_destroy(m);
    }
    producer_->Poll();
    int64_t now = WallClockMs();
    for (auto& [id, rt] : tasks_) {
      if (rt.running) rt.task->PunctuateWallClock(now);
    }
    if (committer_->CommitDue()) {
      if (!committer_->CommitAll(tasks_) &&
          producer_->delivery_error() != RD_KAFKA_RESP_ERR_NO_ERROR) {
        committer_->AbortAll(tasks_, "commit failed");
      }
    }
    if (std::chrono::steady_clock::now() - last_status_ >= std::chrono::milliseconds(500)) {
      RefreshStatus();
      last_status_ = std::chrono::steady_clock::now();
    }
  }
  Close(true);
}

void StreamThread::Impl::Close(bool clean) {
  if (closed_) return;
  if (clean) {
    try {
      if (!committer_->CommitAll(tasks_)) committer_->AbortAll(tasks_, "final commit failed");
    } catch (const std::exception& e) {
      clean = false;  // already logged; close as after any failure
    }
  }
  closed_ = true;
  if (!clean) {
    failure_.MarkFailed();
    if (producer_->in_transaction()) {
      producer_->AbortTransaction(10000);
      producer_->AbandonTransaction();
    }
  }
  std::vector<TaskId> ids;
  for (auto& [id, rt] : tasks_) ids.push_back(id);
  for (auto id : ids) CloseTask(id, clean);
  rd_kafka_consumer_close(consumer_.get());
  rd_kafka_consumer_close(restore_consumer_.get());
  RefreshStatus();
  Log(LogLevel::kInfo, "stream_thread_stopped", {{"thread", index_}, {"clean", clean}});
}

StreamThread::StreamThread(const Topology& topology, const StreamsConfig& config, int index,
                           state::StateResources& resources)
    : impl_(std::make_unique<Impl>(topology, config, index, resources)) {}

StreamThread::~StreamThread() { Stop(); }

void StreamThread::Start() {
  thread_ = std::thread([this] {
    try {
      impl_->Run();
    } catch (const std::exception& e) {
      try {
        impl_->Close(false);
      } catch (const std::exception& close_error) {
        Log(LogLevel::kError, "stream_thread_close_failed", {{"error", close_error.what()}});
      }
      std::lock_guard<std::mutex> lock(impl_->status_mu_);
      impl_->status_.alive = false;
      impl_->status_.error = e.what();
    }
  });
}

void StreamThread::Stop() {
  impl_->stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool StreamThread::Query(const TaskId& task,
                         const std::function<void(const ReadOnlyStores&)>& query) const {
  std::shared_lock<std::shared_mutex> lock(impl_->query_mu_);
  auto it = impl_->queryable_.find(task);
  if (it == impl_->queryable_.end()) return false;
  query(ReadOnlyStores(*it->second));
  return true;
}

ThreadStatus StreamThread::Status() const {
  std::lock_guard<std::mutex> lock(impl_->status_mu_);
  return impl_->status_;
}

}  // namespace cm::topology
