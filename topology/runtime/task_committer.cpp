#include "topology/runtime/task_committer.h"

#include <algorithm>
#include <charconv>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "topology/common/log.h"
#include "topology/common/wall_clock.h"
#include "topology/kafka/kafka_client.h"
#include "topology/runtime/state_snapshot_listener.h"

namespace cm::topology {

namespace {

// The state writes of one commit, one lane each, waited for on every way out of CommitAll: a
// failure there throws, and the writes use the tasks' states.
class CommitWrites {
 public:
  explicit CommitWrites(StateWriter& writer) : writer_(writer) {}
  ~CommitWrites() {
    for (StateWriter::Lane& lane : lanes_)
      [[maybe_unused]] const state::Status s = writer_.Wait(lane);
  }
  CommitWrites(const CommitWrites&) = delete;
  CommitWrites& operator=(const CommitWrites&) = delete;

  // Its changes are in the task's buffer already: none count against the writer's queue bound.
  void Submit(state::TaskState::StateWrite write) {
    writer_.Submit(lanes_.emplace_back(), 0, std::move(write));
  }
  // Waits for the i-th write submitted; its failure, if it failed.
  state::Status Wait(size_t i) { return writer_.Wait(lanes_[i]); }

 private:
  StateWriter& writer_;
  std::deque<StateWriter::Lane> lanes_;  // a deque: a lane stays put while more are added
};

}  // namespace

TaskCommitter::TaskCommitter(const Topology& topology, const StreamsConfig& config,
                             int thread_index, std::string writer_id, StreamProducer& producer,
                             RecordCollectorImpl& collector, StateWriter& writer,
                             rd_kafka_t* consumer, rd_kafka_t* restore_consumer,
                             ThreadFailure& failure)
    : topology_(topology),
      config_(config),
      index_(thread_index),
      writer_id_(std::move(writer_id)),
      producer_(producer),
      collector_(collector),
      writer_(writer),
      consumer_(consumer),
      restore_consumer_(restore_consumer),
      failure_(failure) {}

bool TaskCommitter::CommitDue() const {
  return UntilCommitDue().count() == 0 || records_since_commit_ >= config_.commit_max_pending;
}

std::chrono::milliseconds TaskCommitter::UntilCommitDue() const {
  auto left = config_.commit_interval - (std::chrono::steady_clock::now() - last_commit_);
  return std::max(std::chrono::milliseconds(0), std::chrono::ceil<std::chrono::milliseconds>(left));
}

void TaskCommitter::Publish(const std::vector<SealedOutputs>& seals) {
  // Keyed by views of the outputs' topics: a million outputs build no key string and copy no
  // headers (each one's id goes to the producer as an extra header).
  std::vector<std::map<std::pair<std::string_view, int32_t>, DeliveryRange>> delivered(
      seals.size());
  std::string id;
  for (size_t s = 0; s < seals.size(); ++s) {
    const SealedOutputs& seal = seals[s];
    id = OutputIdPrefix(seal.writer, seal.seq, seal.rt->id.ToString());
    const size_t prefix_size = id.size();
    for (size_t i = 0; i < seal.outputs->size(); ++i) {
      if (seal.already.count(i) != 0) continue;
      const PendingOutput& o = (*seal.outputs)[i];
      const int32_t partition = (*seal.partitions)[i];
      id.resize(prefix_size);
      char digits[24];
      id.append(digits, std::to_chars(digits, digits + sizeof digits, i).ptr);
      const StreamProducer::HeaderView output_id{kOutputIdHeader, id};
      producer_.Produce(o.topic, partition, o.record.key, o.record.value, o.record.timestamp_ms,
                        o.record.headers, &delivered[s][{o.topic, partition}], &output_id);
    }
  }
  // Every output is acknowledged before any mark is sent. Outputs and marks go to different
  // partitions, which librdkafka sends in no set order: a mark in the log ahead of an output
  // lost to a crash would tell the restart that the output needs no sending.
  if (!producer_.Flush()) {
    // The outputs are sealed: a restart finds the ones that arrived and sends the rest.
    failure_.Fatal(std::string("publishing sealed outputs failed: ") +
                   rd_kafka_err2str(producer_.delivery_error()));
    return;
  }
  for (size_t s = 0; s < seals.size(); ++s) {
    TaskRuntime& rt = *seals[s].rt;
    for (const auto& [target, range] : delivered[s]) {
      if (range.last >= 0)
        rt.sink_positions[{std::string(target.first), target.second}] = range.last + 1;
    }
    unwritten_marks_[rt.id] =
        nlohmann::json{{"writer", seals[s].writer}, {"seq", seals[s].seq}}.dump();
  }
}

void TaskCommitter::ProduceMarks(TaskMap& tasks) {
  for (const auto& [id, mark] : unwritten_marks_) {
    auto it = tasks.find(id);
    if (it == tasks.end() || !it->second.running) continue;
    producer_.Produce(Topology::CommitTopic(topology_.application_id(), id.subtopology),
                      id.partition, id.ToString(), mark, WallClockMs(),
                      {{kCommitRecordTypeHeader, "published"}}, nullptr);
  }
  unwritten_marks_.clear();
}

void TaskCommitter::Republish(TaskRuntime& rt, const UnpublishedOutputs& u) {
  std::vector<int32_t> partitions;
  std::set<std::pair<std::string, int32_t>> targets;
  for (const auto& o : u.outputs) {
    auto partition = collector_.PartitionFor(o.topic, o.record.key);
    if (!partition) return;  // the thread has failed
    partitions.push_back(*partition);
    targets.insert({o.topic, *partition});
  }
  const std::string prefix = OutputIdPrefix(u.writer, u.seq, rt.id.ToString());
  std::set<size_t> already;
  // One deadline for the whole scan: a partition that cannot be read to its end fails the
  // task (the next owner tries again) rather than holding the thread forever.
  const auto deadline = std::chrono::steady_clock::now() + config_.republish_timeout;
  for (const auto& [topic, partition] : targets) {
    const std::string where = topic + "[" + std::to_string(partition) + "]";
    int64_t low = 0, high = 0;
    if (auto s = QueryWatermarks(restore_consumer_, topic, partition, low, high); !s.ok()) {
      failure_.FailTask(rt.id.ToString(), "republish: " + s.message());
      return;
    }
    auto hint = u.scan_from.find(topic + "/" + std::to_string(partition));
    int64_t from = std::max(low, hint == u.scan_from.end() ? low : hint->second);
    PartitionReader reader(restore_consumer_, topic, partition, from, high);
    auto done = reader.Read(deadline, [&](const rd_kafka_message_t& m) -> state::Result<bool> {
      auto id = LastHeader(m, kOutputIdHeader);
      size_t index = 0;
      if (id && id->substr(0, prefix.size()) == prefix &&
          std::from_chars(id->data() + prefix.size(), id->data() + id->size(), index).ec ==
              std::errc())
        already.insert(index);
      return true;
    });
    if (!done.ok()) {
      failure_.FailTask(rt.id.ToString(),
                        "republish: scanning " + where +
                            " for published outputs failed: " + done.status().message());
      return;
    }
    if (!*done) {
      // Unread, the partition's outputs would be sent twice or the task wait forever.
      const std::string why = "did not reach offset " + std::to_string(high) + " within " +
                              std::to_string(config_.republish_timeout.count()) +
                              " ms (stopped at " + std::to_string(reader.next_offset()) + ")";
      failure_.FailTask(rt.id.ToString(),
                        "republish: scanning " + where + " for published outputs " + why);
      return;
    }
  }
  Log(LogLevel::kInfo, "outputs_republished",
      {{"task", rt.id.ToString()},
       {"seal", prefix},
       {"outputs", u.outputs.size()},
       {"alreadyDelivered", already.size()}});
  producer_.BeginTransactionIfNeeded();
  Publish({{&rt, u.writer, u.seq, &u.outputs, &partitions, std::move(already)}});
  if (producer_.in_transaction()) {
    if (auto e = producer_.CommitTransaction(60000)) {
      producer_.AbandonTransaction();  // before Fatal, which throws outside callbacks
      failure_.Fatal("commit_transaction of republished outputs failed: " + e->what);
    }
  }
}

// The commit protocol (see README, "Exactly-once"):
//   1. changelog records of every dirty task are produced and acknowledged;
//   2. one commit record per task seals them: the changelog ranges and the input offsets;
//   3. under exactly-once the Kafka transaction commits (outputs become visible atomically);
//   4. the store writes and the offsets they reflect go to RocksDB, one WriteBatch per task,
//      all tasks' on the state writer's threads at once;
//   5. with an outbox, the outputs are published.
// A crash before 2 leaves unsealed records that restores skip; after 2, the log is the truth
// and a restart restores the tail the local checkpoint misses.
bool TaskCommitter::CommitAll(TaskMap& tasks) {
  // What processors deferred to the commit is processed first: its outputs and store writes
  // belong to this commit. Then deletes of keys that were never committed leave the buffer (a
  // timer set and fired within the commit): no changelog record, no tombstone.
  for (auto& [id, rt] : tasks) {
    if (!rt.running) continue;
    try {
      if (rt.task->HasDeferred()) rt.task->ForwardDeferred();
      rt.task->state().DropNoOpDeletes();
    } catch (const state::StoreFailure& e) {
      failure_.FailTask(rt.task->name(), e.what());  // throws, or defers in a callback
      return false;
    }
  }
  std::vector<TaskRuntime*> dirty;
  for (auto& [id, rt] : tasks) {
    if (rt.running &&
        (rt.dirty || !rt.outbox.empty() || rt.task->state().pending_change_count() > 0)) {
      dirty.push_back(&rt);
    }
  }
  last_commit_ = std::chrono::steady_clock::now();
  records_since_commit_ = 0;
  if (dirty.empty()) {
    // Outputs from punctuation alone still need their transaction closed, and published seals
    // their marks.
    if (!producer_.in_transaction() && unwritten_marks_.empty()) return true;
    ProduceMarks(tasks);
    producer_.Flush();
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
        [&](const std::string& store, const state::PendingChange& c) {
          if (listener && listener->WantsStore(store)) {
            snapshot_changes[rt->id].push_back({store, c.Copy()});
          }
          if (range == nullptr || store != current_store) {
            current_store = store;
            topic = Topology::ChangelogTopic(app, store);
            range = &ranges[{rt->id, store}];
          }
          producer_.Produce(topic, rt->id.partition, c.key, c.value,
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
    for (const auto& o : rt->outbox) {
      auto partition = collector_.PartitionFor(o.topic, o.record.key);
      if (!partition) return false;  // the thread failed (inside a rebalance callback)
      parts.push_back(*partition);
    }
    for (auto& chunk : EncodeOutbox(rt->outbox, 512 * 1024)) {
      producer_.Produce(Topology::CommitTopic(app, rt->id.subtopology), rt->id.partition,
                        rt->id.ToString(), chunk, WallClockMs(),
                        {{kCommitRecordTypeHeader, "outbox"}}, &outboxes[rt->id]);
    }
  }
  if (!producer_.Flush()) {
    AbortAll(tasks, std::string("changelog, outbox or mark delivery failed: ") +
                        rd_kafka_err2str(producer_.delivery_error()));
    return false;
  }
  ++commit_seq_;
  // The previous commit's "published" marks go with this commit's seals: a task with a seal
  // gets its mark in the seal's batch, so the mark costs no flush and no restore fetch of its
  // own (a task with nothing to seal gets it alone).
  ProduceMarks(tasks);
  std::map<TaskId, DeliveryRange> seals;
  std::set<TaskId> new_gaps;
  for (TaskRuntime* rt : dirty) {
    nlohmann::json changelogs = nlohmann::json::object();
    std::map<std::string, int64_t> ends = rt->changelog_positions;
    for (auto& [key, range] : ranges) {
      if (key.first != rt->id || range.first < 0) continue;
      changelogs[key.second] = {range.first, range.last + 1};
      // Records between the last sealed position and this commit's first never sealed (an
      // aborted commit; a crash's leftovers written after the restore read the log).
      int64_t& end = ends[key.second];
      if (rt->changelog_gaps && range.first > end) {
        AddGap(*rt->changelog_gaps, key.second, end, range.first);
        new_gaps.insert(rt->id);
      }
      end = range.last + 1;
    }
    nlohmann::json seal = {{"writer", writer_id_},
                           {"seq", commit_seq_},
                           {"inputs", rt->positions},
                           {"changelogs", std::move(changelogs)}};
    // With its gaps and each store's position, this seal alone decides every changelog record
    // before it: a restore reads the commit log's tail only.
    if (rt->changelog_gaps) {
      std::erase_if(ends, [](const auto& e) { return e.second <= 0; });
      seal["gaps"] = GapsToJson(*rt->changelog_gaps);
      seal["ends"] = std::move(ends);
    }
    // A restarted or moved task goes on from it: windows stay closed, punctuations keep time.
    if (rt->task->stream_time() != INT64_MIN) seal["streamTime"] = rt->task->stream_time();
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
    producer_.Produce(Topology::CommitTopic(app, rt->id.subtopology), rt->id.partition,
                      rt->id.ToString(), seal.dump(), WallClockMs(),
                      {{kCommitRecordTypeHeader, "seal"}}, &seals[rt->id]);
  }
  if (!producer_.Flush()) {
    // A seal whose fate is unknown cannot be undone: restart and let the log decide.
    failure_.Fatal(std::string("commit record delivery failed: ") +
                   rd_kafka_err2str(producer_.delivery_error()));
    return false;
  }
  if (producer_.in_transaction()) {
    if (auto e = producer_.CommitTransaction(60000)) {
      producer_.AbandonTransaction();  // not retried: aborted below, or the thread fails
      if (!e->abortable) {
        failure_.Fatal("commit_transaction failed: " + e->what);
        return false;
      }
      if (auto abort_error = producer_.AbortTransaction(60000)) {
        // The producer would still hold the failed transaction: every later begin fails.
        failure_.Fatal("abort_transaction after a failed commit_transaction (" + e->what +
                       ") failed: " + *abort_error);
        return false;
      }
      AbortAll(tasks, "transaction aborted: " + e->what);
      return false;
    }
  }
  auto offsets = NewPartitionList();
  // The store writes run on the writer's threads, each task's database beside the others'.
  // No task's state is touched until its write has run.
  CommitWrites writes(writer_);
  for (TaskRuntime* rt : dirty) {
    state::CheckpointEntries checkpoint;
    const DeliveryRange& seal = seals[rt->id];
    if (seal.last >= 0) rt->commit_position = seal.last + 1;
    // Until its outputs are published, a restart must read this commit's outbox and seal again.
    if (auto box = outboxes.find(rt->id); box != outboxes.end() && box->second.first >= 0) {
      rt->commit_position = box->second.first;
    }
    checkpoint[kCheckpointCommits] = std::to_string(rt->commit_position);
    if (rt->task->stream_time() != INT64_MIN)
      checkpoint[kCheckpointStreamTime] = std::to_string(rt->task->stream_time());
    for (auto& [key, range] : ranges) {
      if (key.first == rt->id && range.last >= 0)
        rt->changelog_positions[key.second] = range.last + 1;
    }
    for (const auto& [store, offset] : rt->changelog_positions) {
      checkpoint[CheckpointChangelogKey(store)] = std::to_string(offset);
    }
    if (new_gaps.contains(rt->id)) {
      checkpoint[kCheckpointGaps] = GapsToJson(*rt->changelog_gaps).dump();
    }
    for (const auto& [topic, offset] : rt->positions) {
      checkpoint[CheckpointInputKey(topic)] = std::to_string(offset);
      rd_kafka_topic_partition_list_add(offsets.get(), topic.c_str(), rt->id.partition)->offset =
          offset;
    }
    writes.Submit(rt->task->state().PrepareCommit(std::move(checkpoint)));
  }
  // Group offsets are only for lag monitoring: the sealed commit records are the truth.
  if (offsets->cnt > 0) {
    if (rd_kafka_resp_err_t err = rd_kafka_commit(consumer_, offsets.get(), 1)) {
      Log(LogLevel::kWarn, "group_offset_commit_failed",
          {{"thread", index_}, {"error", rd_kafka_err2str(err)}});
    }
  }
  // Every task whose write ran takes it in (its record cache entries included) before a failed
  // one fails the thread.
  std::string failed;
  for (size_t i = 0; i < dirty.size(); ++i) {
    TaskRuntime* rt = dirty[i];
    if (state::Status s = writes.Wait(i); !s.ok()) {
      failed += (failed.empty() ? "local state write failed for task " : "; for task ") +
                rt->id.ToString() + ": " + s.ToString();
      continue;
    }
    rt->task->state().CommitWritten();
    rt->committed_positions = rt->positions;
    rt->dirty = false;
    if (listener) {
      listener->OnTaskCommitted(rt->id, std::move(snapshot_changes[rt->id]),
                                rt->changelog_positions);
    }
  }
  if (!failed.empty()) {
    failure_.Fatal(failed);
    return false;
  }
  // Published once the state is written: whoever reads an output and then queries the task's
  // store sees the state that produced it, or a later one.
  std::vector<SealedOutputs> sealed;
  for (TaskRuntime* rt : dirty) {
    if (!rt->outbox.empty())
      sealed.push_back({rt, writer_id_, commit_seq_, &rt->outbox, &output_partitions[rt->id], {}});
  }
  if (!sealed.empty()) {
    producer_.BeginTransactionIfNeeded();
    Publish(sealed);
  }
  for (TaskRuntime* rt : dirty) rt->outbox.clear();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ++commits_;
  commit_seconds_sum_ += seconds;
  for (size_t i = 0; i < std::size(kCommitLatencyBounds); ++i) {
    if (seconds <= kCommitLatencyBounds[i]) ++commit_buckets_[i];
  }
  return true;
}

void TaskCommitter::AbortAll(TaskMap& tasks, const std::string& reason) {
  Log(LogLevel::kWarn, "commit_aborted", {{"thread", index_}, {"reason", reason}});
  ++aborted_;
  if (producer_.in_transaction()) {
    if (auto e = producer_.AbortTransaction(60000)) {
      failure_.Fatal("abort_transaction failed: " + *e);
      return;
    }
  } else {
    producer_.PurgeQueued();
  }
  producer_.ClearDeliveryError();
  auto seek = NewPartitionList();
  for (auto& [id, rt] : tasks) {
    if (!rt.running) continue;
    rt.task->state().Abort();
    rt.task->DropDeferred();
    rt.outbox.clear();
    rt.dirty = false;
    // A task that processed nothing since its last commit gets its next record from there
    // anyway. Its partitions may not have started fetching yet (just assigned), and a seek
    // then fails unreported or, racing the start, makes librdkafka discard it (StartRunning).
    if (rt.positions == rt.committed_positions) continue;
    rt.positions = rt.committed_positions;
    for (const auto& [topic, offset] : rt.committed_positions) {
      rd_kafka_topic_partition_list_add(seek.get(), topic.c_str(), id.partition)->offset = offset;
    }
  }
  if (seek->cnt > 0) {
    // Asynchronous: its version barrier drops records fetched before it, and a blocking seek
    // can time out while the partition is being revoked under load.
    if (rd_kafka_error_t* e = rd_kafka_seek_partitions(consumer_, seek.get(), 0)) {
      failure_.Fatal("seek after abort failed: " + TakeErrorMessage(e));
    }
  }
}

void TaskCommitter::AddStatus(ThreadStatus& s) const {
  s.commits = commits_;
  s.aborted_commits = aborted_;
  s.commit_seconds_sum = commit_seconds_sum_;
  s.commit_latency_buckets = commit_buckets_;
}

}  // namespace cm::topology
