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
#include "topology/runtime/record_collector.h"
#include "topology/runtime/state_restorer.h"
#include "topology/runtime/state_snapshot_listener.h"
#include "topology/runtime/stream_producer.h"
#include "topology/runtime/stream_task.h"
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
  struct TaskRuntime;
  // Where one task's outputs go: straight to Kafka, or into the task's outbox until its next
  // commit is sealed (exactly-once on a broker that does not filter aborted transactions).
  class TaskCollector final : public RecordCollector {
   public:
    TaskCollector(Impl& thread, TaskRuntime& task) : thread_(thread), task_(task) {}
    void Send(const std::string& topic, const Record& record) override {
      thread_.Send(task_, topic, record);
    }

   private:
    Impl& thread_;
    TaskRuntime& task_;
  };

  struct TaskRuntime {
    TaskId id;
    std::unique_ptr<TaskCollector> collector;
    std::unique_ptr<StreamTask> task;
    std::unique_ptr<StateRestorer> restorer;
    bool running = false;
    std::vector<std::string> topics;           // source topics; the first drives group assignment
    std::map<std::string, int64_t> positions;  // next offset, as processed
    std::map<std::string, int64_t> committed_positions;  // next offset, as last sealed
    std::map<std::string, int64_t> changelog_positions;  // next offset per logged store
    int64_t commit_position = 0;
    bool dirty = false;
    std::vector<PendingOutput> outbox;
    std::map<std::pair<std::string, int32_t>, int64_t> sink_positions;  // after our last output
    // After `cmstream replay`: per source topic, where the application was before the reset.
    // While a record below it is processed, outputs to external topics were sent before and are
    // dropped; those to internal topics carry kReplayedHeader so downstream tasks drop theirs.
    std::map<std::string, int64_t> published_until;
    bool replaying = false;
  };

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
  void Send(TaskRuntime& rt, const std::string& topic, const Record& record);
  // Where an output to `topic` goes (a bounded run redirects all but internal topics).
  const std::string& OutputTopic(const std::string& topic);
  int32_t PartitionFor(const std::string& topic, const std::string& key);
  // Sends sealed outputs to their topics, each tagged <writer>/<seq>/<index>, skipping the
  // indexes in `already`, then marks the seal published in the commit log.
  void Publish(TaskRuntime& rt, const std::string& writer, uint64_t seq,
               const std::vector<PendingOutput>& outputs, const std::vector<int32_t>& partitions,
               const std::set<size_t>& already);
  // After a crash between a seal and its "published" mark: finds which of the seal's outputs
  // reached their partitions and sends the rest.
  void Republish(TaskRuntime& rt, const UnpublishedOutputs& unpublished);
  bool CommitAll();
  void AbortAll(const std::string& reason);
  void RefreshStatus();

  const Topology& topology_;
  const StreamsConfig& config_;
  int index_;
  ThreadFailure failure_;
  state::StateResources& resources_;
  std::string writer_id_;
  uint64_t commit_seq_ = 0;
  KafkaHandle consumer_;
  KafkaHandle restore_consumer_;
  std::unique_ptr<StreamProducer> producer_;
  bool outbox_mode_ = false;
  std::map<std::string, int32_t> partition_counts_;
  std::set<std::string> internal_topics_;
  std::map<std::string, std::string> output_topics_;
  bool assigned_ = false;
  bool closed_ = false;
  std::map<TaskId, TaskRuntime> tasks_;
  std::map<std::pair<std::string, int32_t>, TaskRuntime*> by_partition_;
  std::chrono::steady_clock::time_point last_commit_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_status_ = std::chrono::steady_clock::now();
  uint64_t processed_ = 0, commits_ = 0, aborted_ = 0;
  uint64_t replayed_outputs_dropped_ = 0;
  double commit_seconds_sum_ = 0;
  std::vector<uint64_t> commit_buckets_ = std::vector<uint64_t>(std::size(kCommitLatencyBounds), 0);
  uint64_t records_since_commit_ = 0;
};

StreamThread::Impl::Impl(const Topology& topology, const StreamsConfig& config, int index,
                         state::StateResources& resources)
    : topology_(topology), config_(config), index_(index), failure_(index), resources_(resources) {
  const std::string client =
      config.application_id + "-" + config.instance_id + "-StreamThread-" + std::to_string(index);
  writer_id_ = client + "-" + std::to_string(WallClockMs());
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
  status_.index = index;
  for (const auto& topic : topology.InternalTopics()) internal_topics_.insert(topic);
  outbox_mode_ =
      config.guarantee == ProcessingGuarantee::kExactlyOnce && !config.broker_filters_aborted;
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
        AbortAll("assignment lost");
      } else if (!CommitAll()) {
        AbortAll("commit before revocation failed");
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
  rt.collector = std::make_unique<TaskCollector>(*this, rt);
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
  if (const auto& unpublished = rt.restorer->unpublished()) Republish(rt, *unpublished);
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
  if (!rt.published_until.empty()) {
    auto until = rt.published_until.find(r.topic);
    rt.replaying = until != rt.published_until.end() && m->offset < until->second;
  }
  if (!rt.replaying) {
    rt.replaying = std::any_of(r.headers.begin(), r.headers.end(),
                               [](const Header& h) { return h.key == kReplayedHeader; });
  }
  rt.task->Process(r);
  rt.replaying = false;
  rt.positions[r.topic] = m->offset + 1;
  rt.dirty = true;
  ++processed_;
  ++records_since_commit_;
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

void StreamThread::Impl::Send(TaskRuntime& rt, const std::string& topic, const Record& record) {
  if (rt.replaying) {
    if (internal_topics_.count(topic) == 0) {
      ++replayed_outputs_dropped_;  // sent before the reset
      return;
    }
    Record marked = record;
    marked.headers.push_back({kReplayedHeader, "1"});
    rt.replaying = false;  // Send the marked copy as usual
    Send(rt, topic, marked);
    rt.replaying = true;
    return;
  }
  const std::string& target = OutputTopic(topic);
  if (outbox_mode_) {
    rt.outbox.push_back({target, record});
    return;
  }
  producer_->Produce(target, PartitionFor(target, record.key), record.key, record.value,
                     record.timestamp_ms, record.headers, nullptr);
}

const std::string& StreamThread::Impl::OutputTopic(const std::string& topic) {
  if (config_.output_topic_prefix.empty() || internal_topics_.count(topic) != 0) return topic;
  auto it = output_topics_.find(topic);
  if (it == output_topics_.end())
    it = output_topics_.emplace(topic, config_.output_topic_prefix + topic).first;
  return it->second;
}

int32_t StreamThread::Impl::PartitionFor(const std::string& topic, const std::string& key) {
  auto it = partition_counts_.find(topic);
  if (it == partition_counts_.end()) {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(producer_->handle(), 1, nullptr, &md, 10000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      failure_.Fatal(std::string("metadata request failed: ") + rd_kafka_err2str(err));
    for (int i = 0; i < md->topic_cnt; ++i) {
      if (md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[i].partition_cnt > 0) {
        partition_counts_[md->topics[i].topic] = md->topics[i].partition_cnt;
      }
    }
    rd_kafka_metadata_destroy(md);
    it = partition_counts_.find(topic);
    if (it == partition_counts_.end()) failure_.Fatal("output topic " + topic + " does not exist");
  }
  // Kafka's default partitioner, computed here so that outputs land where recovery looks.
  return PartitionForKey(key, it->second);
}

void StreamThread::Impl::Publish(TaskRuntime& rt, const std::string& writer, uint64_t seq,
                                 const std::vector<PendingOutput>& outputs,
                                 const std::vector<int32_t>& partitions,
                                 const std::set<size_t>& already) {
  std::map<std::pair<std::string, int32_t>, DeliveryRange> delivered;
  const std::string prefix = writer + "/" + std::to_string(seq) + "/";
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (already.count(i) != 0) continue;
    const PendingOutput& o = outputs[i];
    std::vector<Header> headers = o.record.headers;
    headers.push_back({kOutputIdHeader, prefix + std::to_string(i)});
    producer_->Produce(o.topic, partitions[i], o.record.key, o.record.value, o.record.timestamp_ms,
                       headers, &delivered[{o.topic, partitions[i]}]);
  }
  nlohmann::json mark = {{"writer", writer}, {"seq", seq}};
  producer_->Produce(Topology::CommitTopic(topology_.application_id(), rt.id.subtopology),
                     rt.id.partition, rt.id.ToString(), mark.dump(), WallClockMs(),
                     {{kCommitRecordTypeHeader, "published"}}, nullptr);
  if (!producer_->Flush()) {
    // The outputs are sealed: a restart finds the ones that arrived and sends the rest.
    failure_.Fatal(std::string("publishing sealed outputs failed: ") +
                   rd_kafka_err2str(producer_->delivery_error()));
  }
  for (const auto& [partition, range] : delivered) {
    if (range.last >= 0) rt.sink_positions[partition] = range.last + 1;
  }
}

void StreamThread::Impl::Republish(TaskRuntime& rt, const UnpublishedOutputs& u) {
  std::vector<int32_t> partitions;
  std::map<std::pair<std::string, int32_t>, bool> targets;
  for (const auto& o : u.outputs) {
    partitions.push_back(PartitionFor(o.topic, o.record.key));
    targets[{o.topic, partitions.back()}] = true;
  }
  const std::string prefix = u.writer + "/" + std::to_string(u.seq) + "/";
  std::set<size_t> already;
  for (const auto& [target, unused] : targets) {
    const auto& [topic, partition] = target;
    int64_t low = 0, high = 0;
    if (rd_kafka_query_watermark_offsets(restore_consumer_.get(), topic.c_str(), partition, &low,
                                         &high, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      failure_.Fatal("cannot read offsets of " + topic);
    }
    auto hint = u.scan_from.find(topic + "/" + std::to_string(partition));
    int64_t from = std::max(low, hint == u.scan_from.end() ? low : hint->second);
    if (from >= high) continue;
    auto list = NewPartitionList();
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = from;
    rd_kafka_assign(restore_consumer_.get(), list.get());
    for (int64_t next = from; next < high;) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(restore_consumer_.get(), 1000);
      if (m == nullptr) continue;
      bool mine =
          m->rkt != nullptr && m->partition == partition && topic == rd_kafka_topic_name(m->rkt);
      if (mine && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) next = high;
      if (mine && m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        next = m->offset + 1;
        rd_kafka_headers_t* headers = nullptr;
        const void* id = nullptr;
        size_t size = 0;
        if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(headers, kOutputIdHeader, &id, &size) ==
                RD_KAFKA_RESP_ERR_NO_ERROR) {
          std::string_view value(static_cast<const char*>(id), size);
          if (value.substr(0, prefix.size()) == prefix)
            already.insert(std::stoul(std::string(value.substr(prefix.size()))));
        }
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(restore_consumer_.get(), nullptr);
  }
  Log(LogLevel::kInfo, "outputs_republished",
      {{"task", rt.id.ToString()},
       {"seal", prefix},
       {"outputs", u.outputs.size()},
       {"alreadyDelivered", already.size()}});
  producer_->BeginTransactionIfNeeded();
  Publish(rt, u.writer, u.seq, u.outputs, partitions, already);
  if (producer_->in_transaction()) {
    if (auto e = producer_->CommitTransaction(60000)) {
      failure_.Fatal("commit_transaction of republished outputs failed: " + e->what);
      producer_->AbandonTransaction();
    }
  }
}

// The commit protocol (see README, "Exactly-once"):
//   1. changelog records of every dirty task are produced and acknowledged;
//   2. one commit record per task seals them: the changelog ranges and the input offsets;
//   3. under exactly-once the Kafka transaction commits (outputs become visible atomically);
//   4. the store writes and the offsets they reflect go to RocksDB in one WriteBatch.
// A crash before 2 leaves unsealed records that restores skip; after 2, the log is the truth
// and a restart restores the tail the local checkpoint misses.
bool StreamThread::Impl::CommitAll() {
  std::vector<TaskRuntime*> dirty;
  for (auto& [id, rt] : tasks_) {
    if (rt.running &&
        (rt.dirty || !rt.outbox.empty() || rt.task->state().pending_change_count() > 0)) {
      dirty.push_back(&rt);
    }
  }
  last_commit_ = std::chrono::steady_clock::now();
  records_since_commit_ = 0;
  if (dirty.empty()) {
    if (producer_->in_transaction()) {  // outputs from punctuation alone still need their
                                        // transaction closed
      producer_->Flush();
    } else {
      return true;
    }
  }
  auto started = std::chrono::steady_clock::now();
  const std::string& app = topology_.application_id();
  std::map<std::pair<TaskId, std::string>, DeliveryRange> ranges;
  StateSnapshotListener* listener = config_.snapshot_listener;
  std::map<TaskId, std::vector<StateSnapshotListener::Change>> snapshot_changes;
  for (TaskRuntime* rt : dirty) {
    // Changes come store by store: look up each store's topic and range once, not per change.
    std::string current_store;
    std::string topic;
    DeliveryRange* range = nullptr;
    rt->task->state().VisitPendingChanges(
        [&](const std::string& store, const state::StoreChange& c) {
          if (listener && listener->WantsStore(store)) {
            snapshot_changes[rt->id].push_back({store, c});
          }
          if (range == nullptr || store != current_store) {
            current_store = store;
            topic = Topology::ChangelogTopic(app, store);
            range = &ranges[{rt->id, store}];
          }
          producer_->Produce(topic, rt->id.partition, c.key, c.value,
                             rt->task->stream_time() == INT64_MIN ? 0 : rt->task->stream_time(), {},
                             range);
        });
  }
  // Outputs wait in the task's commit-log partition until the seal makes them part of the commit.
  std::map<TaskId, DeliveryRange> outboxes;
  std::map<TaskId, std::vector<int32_t>> output_partitions;
  for (TaskRuntime* rt : dirty) {
    if (rt->outbox.empty()) continue;
    auto& parts = output_partitions[rt->id];
    for (const auto& o : rt->outbox) parts.push_back(PartitionFor(o.topic, o.record.key));
    for (auto& chunk : EncodeOutbox(rt->outbox, 512 * 1024)) {
      producer_->Produce(Topology::CommitTopic(app, rt->id.subtopology), rt->id.partition,
                         rt->id.ToString(), chunk, WallClockMs(),
                         {{kCommitRecordTypeHeader, "outbox"}}, &outboxes[rt->id]);
    }
  }
  if (!producer_->Flush()) {
    AbortAll(std::string("changelog delivery failed: ") +
             rd_kafka_err2str(producer_->delivery_error()));
    return false;
  }
  ++commit_seq_;
  std::map<TaskId, DeliveryRange> seals;
  for (TaskRuntime* rt : dirty) {
    nlohmann::json changelogs = nlohmann::json::object();
    for (auto& [key, range] : ranges) {
      if (key.first == rt->id && range.first >= 0)
        changelogs[key.second] = {range.first, range.last + 1};
    }
    nlohmann::json seal = {{"writer", writer_id_},
                           {"seq", commit_seq_},
                           {"inputs", rt->positions},
                           {"changelogs", std::move(changelogs)}};
    if (auto box = outboxes.find(rt->id); box != outboxes.end() && box->second.first >= 0) {
      seal["outbox"] = {box->second.first, box->second.last + 1};
      nlohmann::json sinks = nlohmann::json::object();
      for (int32_t i = 0; i < static_cast<int32_t>(rt->outbox.size()); ++i) {
        std::pair<std::string, int32_t> target{rt->outbox[static_cast<size_t>(i)].topic,
                                               output_partitions[rt->id][static_cast<size_t>(i)]};
        auto known = rt->sink_positions.find(target);
        if (known != rt->sink_positions.end()) {
          sinks[target.first + "/" + std::to_string(target.second)] = known->second;
        }
      }
      seal["sinks"] = std::move(sinks);
    }
    producer_->Produce(Topology::CommitTopic(app, rt->id.subtopology), rt->id.partition,
                       rt->id.ToString(), seal.dump(), WallClockMs(),
                       {{kCommitRecordTypeHeader, "seal"}}, &seals[rt->id]);
  }
  if (!producer_->Flush()) {
    // A seal whose fate is unknown cannot be undone: restart and let the log decide.
    failure_.Fatal(std::string("commit record delivery failed: ") +
                   rd_kafka_err2str(producer_->delivery_error()));
    return false;
  }
  if (producer_->in_transaction()) {
    if (auto e = producer_->CommitTransaction(60000)) {
      producer_->AbandonTransaction();  // not retried: aborted below, or the thread fails
      if (!e->abortable) {
        failure_.Fatal("commit_transaction failed: " + e->what);
        return false;
      }
      producer_->AbortTransaction(60000);  // errors ignored, as the commits are aborted anyway
      AbortAll("transaction aborted: " + e->what);
      return false;
    }
  }
  auto offsets = NewPartitionList();
  for (TaskRuntime* rt : dirty) {
    state::CheckpointEntries checkpoint;
    const DeliveryRange& seal = seals[rt->id];
    if (seal.last >= 0) rt->commit_position = seal.last + 1;
    // Until its outputs are published, a restart must read this commit's outbox and seal again.
    if (auto box = outboxes.find(rt->id); box != outboxes.end() && box->second.first >= 0) {
      rt->commit_position = box->second.first;
    }
    checkpoint[kCheckpointCommits] = std::to_string(rt->commit_position);
    for (auto& [key, range] : ranges) {
      if (key.first == rt->id && range.last >= 0)
        rt->changelog_positions[key.second] = range.last + 1;
    }
    for (const auto& [store, offset] : rt->changelog_positions) {
      checkpoint[CheckpointChangelogKey(store)] = std::to_string(offset);
    }
    for (const auto& [topic, offset] : rt->positions) {
      checkpoint[CheckpointInputKey(topic)] = std::to_string(offset);
      rd_kafka_topic_partition_list_add(offsets.get(), topic.c_str(), rt->id.partition)->offset =
          offset;
    }
    if (auto s = rt->task->state().Commit(checkpoint); !s.ok()) {
      failure_.Fatal("local state write failed for task " + rt->id.ToString() + ": " +
                     s.ToString());
      return false;
    }
    rt->committed_positions = rt->positions;
    rt->dirty = false;
    if (listener) {
      listener->OnTaskCommitted(rt->id, std::move(snapshot_changes[rt->id]),
                                rt->changelog_positions);
    }
  }
  for (TaskRuntime* rt : dirty) {
    if (rt->outbox.empty()) continue;
    producer_->BeginTransactionIfNeeded();
    Publish(*rt, writer_id_, commit_seq_, rt->outbox, output_partitions[rt->id], {});
    rt->outbox.clear();
  }
  // Group offsets are only for lag monitoring: the sealed commit records are the truth.
  if (offsets->cnt > 0) rd_kafka_commit(consumer_.get(), offsets.get(), 1);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ++commits_;
  commit_seconds_sum_ += seconds;
  for (size_t i = 0; i < std::size(kCommitLatencyBounds); ++i) {
    if (seconds <= kCommitLatencyBounds[i]) ++commit_buckets_[i];
  }
  return true;
}

void StreamThread::Impl::AbortAll(const std::string& reason) {
  Log(LogLevel::kWarn, "commit_aborted", {{"thread", index_}, {"reason", reason}});
  ++aborted_;
  if (producer_->in_transaction()) {
    if (auto e = producer_->AbortTransaction(60000)) {
      failure_.Fatal("abort_transaction failed: " + *e);
      return;
    }
  } else {
    producer_->PurgeQueued();
  }
  producer_->ClearDeliveryError();
  auto seek = NewPartitionList();
  for (auto& [id, rt] : tasks_) {
    if (!rt.running) continue;
    rt.task->state().Abort();
    rt.outbox.clear();
    rt.positions = rt.committed_positions;
    rt.dirty = false;
    for (const auto& [topic, offset] : rt.committed_positions) {
      rd_kafka_topic_partition_list_add(seek.get(), topic.c_str(), id.partition)->offset = offset;
    }
  }
  if (seek->cnt > 0) {
    // Asynchronous, as in StartRunning: the version barrier drops records fetched before it.
    if (rd_kafka_error_t* e = rd_kafka_seek_partitions(consumer_.get(), seek.get(), 0)) {
      std::string what = rd_kafka_error_string(e);
      rd_kafka_error_destroy(e);
      failure_.Fatal("seek after abort failed: " + what);
    }
  }
}

void StreamThread::Impl::RefreshStatus() {
  ThreadStatus s;
  s.index = index_;
  s.assigned = assigned_;
  s.processed = processed_;
  s.produced = producer_->produced();
  s.replayed_outputs_dropped = replayed_outputs_dropped_;
  s.commits = commits_;
  s.aborted_commits = aborted_;
  s.commit_seconds_sum = commit_seconds_sum_;
  s.commit_latency_buckets = commit_buckets_;
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
    auto elapsed = std::chrono::steady_clock::now() - last_commit_;
    bool too_much = records_since_commit_ >= config_.commit_max_pending;
    if (elapsed >= config_.commit_interval || too_much) {
      if (!CommitAll() && producer_->delivery_error() != RD_KAFKA_RESP_ERR_NO_ERROR)
        AbortAll("commit failed");
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
      if (!CommitAll()) AbortAll("final commit failed");
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
