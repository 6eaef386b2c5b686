#include "topology/runtime/stream_thread.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>
#include <string>

#include "state/status.h"
#include "topology/common/log.h"
#include "topology/common/thread_name.h"
#include "topology/common/wall_clock.h"
#include "topology/kafka/consumer_batch.h"
#include "topology/kafka/kafka_client.h"
#include "topology/kafka/kafka_error.h"
#include "topology/runtime/changelog_reader.h"
#include "topology/runtime/record_collector_impl.h"
#include "topology/runtime/state_writer.h"
#include "topology/runtime/stream_producer.h"
#include "topology/runtime/task_committer.h"
#include "topology/runtime/task_manager.h"
#include "topology/runtime/task_runtime.h"
#include "topology/runtime/thread_failure.h"

namespace cm::topology {

namespace {
// Threads writing the thread's restored records and commits to RocksDB: a restore's while the
// stream thread reads on, a commit's two tasks' databases at a time.
constexpr int kStateWriterThreads = 2;
// Restored changes queued for the writer before the reader waits for it: ~10 MiB of records of
// ~100 bytes; counted in changes, so large values queue more.
constexpr size_t kRestoreQueueChanges = 100'000;
}  // namespace

// The poll loop. The parts are built in dependency order and destroyed in reverse, after
// Close: the state writer, the producer, the record collector and committer over it, the task
// manager over those, and the changelog reader over the task manager.
class StreamThread::Impl final {
 public:
  Impl(const Topology& topology, const StreamsConfig& config, int index,
       state::StateResources& resources, CommitSignal& commits);
  ~Impl();

  void Run();
  // Leaves the group and closes every task. Clean: commits first. Otherwise (after a failure)
  // buffered work is dropped; the next owner resumes from the last sealed commit.
  void Close(bool clean);
  bool Query(const TaskId& task, const std::function<void(const ReadOnlyStores&)>& query) const {
    return tasks_->Query(task, query);
  }

  std::atomic<bool> stop_{false};
  mutable std::mutex status_mu_;
  ThreadStatus status_;

 private:
  static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                          rd_kafka_topic_partition_list_t* parts, void* opaque);
  void ProcessMessage(rd_kafka_message_t* m);
  // Throws (through ThreadFailure::Fatal): never called inside a librdkafka callback.
  void FailTask(const TaskRuntime& rt, const state::StoreFailure& e);
  void RefreshStatus();
  // How long the first poll of a loop may wait for records: until the next wall-clock
  // punctuation is due, or the next commit once records were processed; at most kMaxPollWaitMs.
  int PollWaitMs(int64_t now_ms) const;

  const Topology& topology_;
  const StreamsConfig& config_;
  int index_;
  CommitSignal& commits_;
  ThreadFailure failure_;
  KafkaHandle consumer_;
  std::unique_ptr<ConsumerBatch> batch_;  // of consumer_; empty between drains
  KafkaHandle restore_consumer_;
  std::unique_ptr<StateWriter> writer_;
  std::unique_ptr<StreamProducer> producer_;
  std::unique_ptr<RecordCollectorImpl> collector_;
  std::unique_ptr<TaskCommitter> committer_;
  std::unique_ptr<TaskManager> tasks_;
  std::unique_ptr<ChangelogReader> reader_;
  bool closed_ = false;
  std::chrono::steady_clock::time_point last_status_ = std::chrono::steady_clock::now();
  uint64_t processed_ = 0;
  std::map<std::pair<std::string, int32_t>, uint64_t> records_lost_;

  void CheckForLostRecords(const TaskRuntime& rt, const char* topic, int32_t partition,
                           int64_t offset);
};

StreamThread::Impl::Impl(const Topology& topology, const StreamsConfig& config, int index,
                         state::StateResources& resources, CommitSignal& commits)
    : topology_(topology), config_(config), index_(index), commits_(commits), failure_(index) {
  const std::string client =
      config.application_id + "-" + config.instance_id + "-StreamThread-" + std::to_string(index);
  std::string writer_id = client + "-" + std::to_string(WallClockMs());

  rd_kafka_conf_t* cc = rd_kafka_conf_new();
  SetOrThrow(cc, "bootstrap.servers", config.bootstrap_servers);
  SetOrThrow(cc, "client.id", client);
  SetOrThrow(cc, "log_level", "4");
  SetOrThrow(cc, "group.id", config.application_id);
  SetOrThrow(cc, "partition.assignment.strategy", "cooperative-sticky");
  SetOrThrow(cc, "enable.auto.commit", "false");
  SetOrThrow(cc, "enable.auto.offset.store", "false");
  SetOrThrow(cc, "auto.offset.reset", "earliest");
  SetOrThrow(cc, "isolation.level", "read_committed");
  SetOrThrow(cc, "session.timeout.ms", std::to_string(config.session_timeout_ms));
  SetOrThrow(cc, "heartbeat.interval.ms", std::to_string(config.heartbeat_interval_ms));
  SetOrThrow(cc, "max.poll.interval.ms", std::to_string(config.max_poll_interval_ms));
  // librdkafka 2.0 stops fetching once this many messages (or bytes) are queued and looks
  // again only about a second later; a thread that drains 100k records in 0.3 s would idle
  // the rest. The queue is also memory the budgets do not cover, ~120 bytes a record besides
  // the fetched bytes, so the byte bound is the one that holds for most topologies: 16 MiB is
  // ~190,000 usage events, tens of seconds of their work. The count bound is for small records:
  // 1,000,000 is about a second of the fastest topology here (the counting pipeline, 30-byte
  // records, 600,000-900,000 a second); at 300,000 it stalled for ~0.5 s every few hundred
  // thousand records (README, "Benchmarks").
  SetOrThrow(cc, "queued.min.messages", "1000000");
  SetOrThrow(cc, "queued.max.messages.kbytes", "16384");
  // A bounded run learns from the end-of-partition event that an idle partition is done.
  if (!config.stop_offsets.empty()) SetOrThrow(cc, "enable.partition.eof", "true");
  for (const auto& [k, v] : config.consumer_overrides) SetOrThrow(cc, k, v);
  rd_kafka_conf_set_rebalance_cb(cc, &Impl::OnRebalance);
  rd_kafka_conf_set_opaque(cc, this);
  consumer_ = NewKafkaHandle(RD_KAFKA_CONSUMER, cc);
  if (rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(consumer_.get()))
    throw std::runtime_error(std::string("poll_set_consumer: ") + rd_kafka_err2str(err));
  batch_ = std::make_unique<ConsumerBatch>(consumer_.get());

  restore_consumer_ = ChangelogReader::NewRestoreConsumer(config, client);
  writer_ = std::make_unique<StateWriter>("cm-write-" + std::to_string(index), kStateWriterThreads,
                                          kRestoreQueueChanges);
  producer_ = std::make_unique<StreamProducer>(config, client, failure_);
  collector_ = std::make_unique<RecordCollectorImpl>(topology, config, *producer_, failure_,
                                                     consumer_.get());
  committer_ = std::make_unique<TaskCommitter>(topology, config, index, std::move(writer_id),
                                               *producer_, *collector_, *writer_, consumer_.get(),
                                               restore_consumer_.get(), failure_);
  tasks_ = std::make_unique<TaskManager>(topology, config, index, resources, consumer_.get(),
                                         restore_consumer_.get(), *collector_, *committer_,
                                         *writer_, failure_);
  reader_ = std::make_unique<ChangelogReader>(config, client + "-changelogs", *tasks_, failure_);
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
    if (self->tasks_->HandleRebalance(err, parts)) self->RefreshStatus();
  } catch (const std::exception& e) {
    self->failure_.Defer(e.what());
  }
  self->failure_.set_in_callback(false);
}

void StreamThread::Impl::ProcessMessage(rd_kafka_message_t* m) {
  if (!config_.stop_offsets.empty() && m->rkt != nullptr &&
      (m->err == RD_KAFKA_RESP_ERR_NO_ERROR || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)) {
    auto stop = config_.stop_offsets.find({rd_kafka_topic_name(m->rkt), m->partition});
    if (stop != config_.stop_offsets.end() && m->offset >= stop->second) {
      tasks_->ReachStop(stop->first.first, m->partition, stop->second);
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
  TaskRuntime* task = tasks_->RunningTask(topic, m->partition);
  if (task == nullptr) return;  // re-read after restore
  TaskRuntime& rt = *task;
  Record r;
  if (m->key != nullptr) r.key.assign(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) r.value.assign(static_cast<const char*>(m->payload), m->len);
  r.timestamp_ms = rd_kafka_message_timestamp(m, nullptr);
  r.topic = topic;
  r.partition = m->partition;
  r.offset = m->offset;
  r.headers = MessageHeaders(*m);
  CheckForLostRecords(rt, topic, m->partition, m->offset);
  if (rt.committed_positions.count(r.topic) == 0) rt.committed_positions[r.topic] = m->offset;
  collector_->BeginInput(rt, r);
  try {
    rt.task->Process(r);
  } catch (const state::StoreFailure& e) {
    FailTask(rt, e);
    return;
  }
  collector_->EndInput(rt);
  rt.positions[r.topic] = m->offset + 1;
  rt.dirty = true;
  ++processed_;
  committer_->RecordProcessed();
}

void StreamThread::Impl::CheckForLostRecords(const TaskRuntime& rt, const char* topic,
                                             int32_t partition, int64_t offset) {
  // A gap after the task's position is usually harmless (transaction markers, compaction).
  // It is loss when the gap starts below the partition's log start: the broker deleted records
  // before they were processed (retention, or the embedded broker's 5 MiB partition bound),
  // and the consumer's offset reset skipped them with only a client-library warning.
  auto expected = rt.positions.find(topic);
  if (expected == rt.positions.end() || offset <= expected->second) return;
  int64_t low = 0, high = 0;
  if (rd_kafka_get_watermark_offsets(consumer_.get(), topic, partition, &low, &high) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
      low <= expected->second) {
    return;
  }
  const int64_t lost = std::min(low, offset) - expected->second;
  records_lost_[{topic, partition}] += static_cast<uint64_t>(lost);
  Log(LogLevel::kError, "records_lost",
      {{"thread", index_},
       {"task", rt.task->name()},
       {"topic", topic},
       {"partition", partition},
       {"fromOffset", expected->second},
       {"toOffset", std::min(low, offset)},
       {"records", lost},
       {"reason", "the broker deleted them before they were processed"}});
}

void StreamThread::Impl::FailTask(const TaskRuntime& rt, const state::StoreFailure& e) {
  // A store that cannot read or write fails the task; its record is not poison, so it is not
  // dead-lettered. The thread fails like any fatal error: Close(false) commits nothing, so the
  // next owner (or a restart) processes the record again from the last sealed commit.
  failure_.FailTask(rt.task->name(), e.what());
}

void StreamThread::Impl::RefreshStatus() {
  ThreadStatus s;
  s.index = index_;
  s.assigned = tasks_->assigned();
  s.processed = processed_;
  s.task_failures = failure_.task_failures();
  s.records_lost = records_lost_;
  s.produced = producer_->produced();
  s.replayed_outputs_dropped = collector_->replayed_outputs_dropped();
  s.records_rerouted = collector_->rerouted();
  s.misrouted_skipped = collector_->misrouted_skipped();
  committer_->AddStatus(s);
  tasks_->AddStatus(s);
  std::lock_guard<std::mutex> lock(status_mu_);
  status_ = std::move(s);
}

int StreamThread::Impl::PollWaitMs(int64_t now_ms) const {
  // Waiting longer than a punctuator's interval would stretch the interval to the wait: a
  // 10 ms punctuator behind a 50 ms poll fires every 50 ms.
  constexpr int64_t kMaxPollWaitMs = 50;
  int64_t wait = kMaxPollWaitMs;
  // Only records make a commit worth waking for: with none, a short (or zero) commit interval
  // would turn an idle loop into a spin. Punctuators' own writes are committed within
  // kMaxPollWaitMs, as before.
  if (committer_->ProcessedSinceCommit())
    wait = std::min<int64_t>(wait, committer_->UntilCommitDue().count());
  for (const auto& [id, rt] : tasks_->tasks()) {
    if (rt.running) wait = std::min(wait, rt.task->NextWallClockPunctuation() - now_ms);
  }
  return static_cast<int>(std::max<int64_t>(0, wait));
}

void StreamThread::Impl::Run() {
  NameCurrentThread("cm-stream-" + std::to_string(index_));
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
    const bool restoring = tasks_->AnyRestoring();
    if (restoring || reader_->HasLeftovers()) reader_->RestoreStep();
    const int wait_ms = restoring ? 0 : PollWaitMs(WallClockMs());
    // Drain what is fetched, up to a bound, then look after commits and punctuation. A
    // batch is processed whole: a rebalance served while it was taken has closed the revoked
    // tasks, whose records ProcessMessage then drops, and seeks and aborts (which hide records
    // fetched before them) happen only between drains. A full cache commits after the batch.
    for (size_t drained = 0; drained < 10'000;) {
      batch_->Poll(std::chrono::milliseconds(drained == 0 ? wait_ms : 0));
      failure_.RaiseDeferred();
      if (batch_->size() == 0) break;
      for (size_t i = 0; i < batch_->size(); ++i) {
        ProcessMessage(&(*batch_)[i]);
        failure_.RaiseDeferred();
      }
      drained += batch_->size();
      batch_->Clear();
      if (tasks_->CacheFull()) break;
    }
    producer_->Poll();
    int64_t now = WallClockMs();
    for (auto& [id, rt] : tasks_->tasks()) {
      if (!rt.running) continue;
      try {
        rt.task->PunctuateWallClock(now);
      } catch (const state::StoreFailure& e) {
        FailTask(rt, e);
      }
    }
    if (committer_->CommitDue() || tasks_->CacheFull()) {
      if (!committer_->CommitAll(tasks_->tasks()) &&
          producer_->delivery_error() != RD_KAFKA_RESP_ERR_NO_ERROR) {
        committer_->AbortAll(tasks_->tasks(), "commit failed");
      }
      commits_.Notify();
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
      if (!committer_->CommitAll(tasks_->tasks()))
        committer_->AbortAll(tasks_->tasks(), "final commit failed");
    } catch (const std::exception& e) {
      clean = false;  // already logged; close as after any failure
    }
  }
  closed_ = true;
  if (!clean) {
    failure_.MarkFailed();
    if (producer_->in_transaction()) {
      // Already failing: an abort that does not complete leaves the transaction to the
      // broker's timeout, and nothing of it was sealed, so it is logged, not raised.
      if (auto e = producer_->AbortTransaction(10000)) {
        Log(LogLevel::kWarn, "abort_transaction_failed", {{"thread", index_}, {"error", *e}});
      }
      producer_->AbandonTransaction();
    }
  }
  tasks_->CloseAll(clean);
  batch_.reset();  // a failure may have left messages in it
  // Closing leaves the group; a failure only delays the rebalance to the session timeout.
  if (rd_kafka_resp_err_t err = rd_kafka_consumer_close(consumer_.get())) {
    Log(LogLevel::kWarn, "consumer_close_failed",
        {{"thread", index_}, {"error", rd_kafka_err2str(err)}});
  }
  if (rd_kafka_resp_err_t err = rd_kafka_consumer_close(restore_consumer_.get())) {
    Log(LogLevel::kWarn, "restore_consumer_close_failed",
        {{"thread", index_}, {"error", rd_kafka_err2str(err)}});
  }
  RefreshStatus();
  Log(LogLevel::kInfo, "stream_thread_stopped", {{"thread", index_}, {"clean", clean}});
}

StreamThread::StreamThread(const Topology& topology, const StreamsConfig& config, int index,
                           state::StateResources& resources, CommitSignal& commits)
    : impl_(std::make_unique<Impl>(topology, config, index, resources, commits)) {}

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
  return impl_->Query(task, query);
}

ThreadStatus StreamThread::Status() const {
  std::lock_guard<std::mutex> lock(impl_->status_mu_);
  return impl_->status_;
}

}  // namespace cm::topology
