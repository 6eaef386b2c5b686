#include "topology/runtime/stream_task.h"

#include <algorithm>
#include <cassert>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>

#include "state/status.h"
#include "topology/runtime/outbox.h"
#include "topology/runtime/thread_failure.h"

namespace cm::topology {

class StreamTask::NodeContext final : public ProcessorContext {
 public:
  NodeContext(StreamTask& task, const Node& node) : task_(task), node_(node) {}

  void Forward(const Record& record) override {
    for (const auto& child : node_.children) task_.Deliver(child, record);
  }
  void ForwardTo(std::string_view child, const Record& record) override {
    auto it = std::find(node_.children.begin(), node_.children.end(), child);
    if (it == node_.children.end()) {
      // A programming error, but one record must not take the process down: the record goes to
      // the DLQ with this message (ProcessAt catches it).
      throw std::logic_error("'" + node_.name + "' forwards to '" + std::string(child) +
                             "', which is not one of its children");
    }
    task_.Deliver(*it, record);
  }
  void ForwardAtCommit(const Record& record) override { task_.Defer(node_.name, record); }
  void SendToDlq(const Record& record, std::string_view reason) override {
    task_.SendToDlq(record, reason, node_.name);
  }
  state::KeyValueStore& GetKeyValueStore(std::string_view name) override {
    return Checked(task_.state_->key_value_store(Connected(name)), name, "key-value");
  }
  state::WindowStore& GetWindowStore(std::string_view name) override {
    return Checked(task_.state_->window_store(Connected(name)), name, "window");
  }
  state::TimerStore& GetTimerStore(std::string_view name) override {
    return Checked(task_.state_->timer_store(Connected(name)), name, "timer");
  }
  void Schedule(std::chrono::milliseconds interval, PunctuationType type,
                Punctuator punctuator) override {
    if (interval.count() <= 0) throw std::invalid_argument("punctuation interval must be positive");
    int64_t start = type == PunctuationType::kStreamTime
                        ? (task_.stream_time_ == INT64_MIN ? INT64_MIN : task_.stream_time_)
                        : task_.init_wall_clock_ms_;
    int64_t next = start == INT64_MIN ? INT64_MIN : start + interval.count();
    task_.punctuations_.push_back({interval, type, std::move(punctuator), next, node_.name});
  }
  bool Replaying() const override { return task_.collector_.Replaying(); }
  bool ReplayPending() const override { return task_.collector_.ReplayPending(); }
  bool CaughtUp(std::string_view topic) const override {
    return task_.collector_.CaughtUp(std::string(topic));
  }
  int64_t StreamTime() const override { return task_.stream_time_; }
  const std::string& TaskId() const override { return task_.name_; }
  int32_t Partition() const override { return task_.id_.partition; }
  const std::string& ApplicationId() const override { return task_.topology_.application_id(); }

 private:
  // Stores are reachable only from processors the topology connected them to.
  std::string_view Connected(std::string_view store) const {
    if (std::find(node_.stores.begin(), node_.stores.end(), store) == node_.stores.end()) {
      throw std::logic_error("processor '" + node_.name + "' is not connected to store '" +
                             std::string(store) + "'");
    }
    return store;
  }
  template <typename Store>
  static Store& Checked(Store* store, std::string_view name, const char* kind) {
    if (store == nullptr)
      throw std::logic_error("store '" + std::string(name) + "' is not a " + kind + " store");
    return *store;
  }
  StreamTask& task_;
  const Node& node_;
};

StreamTask::StreamTask(const Topology& topology, TaskId id, std::unique_ptr<state::TaskState> state,
                       RecordCollector& collector, std::string dlq_topic, state::RecordCache* cache)
    : topology_(topology),
      subtopology_(topology.subtopologies().at(static_cast<size_t>(id.subtopology))),
      id_(id),
      name_(id.ToString()),
      state_(std::move(state)),
      collector_(collector),
      dlq_topic_(std::move(dlq_topic)),
      cache_(cache) {}

StreamTask::~StreamTask() { ChargeDeferred(-deferred_bytes_); }

void StreamTask::Init(int64_t wall_clock_ms, int64_t stream_time_ms) {
  assert(!initialized_);
  init_wall_clock_ms_ = wall_clock_ms;
  stream_time_ = stream_time_ms;
  for (const auto& name : subtopology_.nodes) {
    const Node& node = topology_.node(name);
    contexts_[name] = std::make_unique<NodeContext>(*this, node);
    if (node.type == NodeType::kProcessor) processors_[name] = node.supplier();
  }
  for (const auto& name : subtopology_.nodes) {  // parents first
    auto it = processors_.find(name);
    if (it != processors_.end()) it->second->Init(*contexts_.at(name));
  }
  initialized_ = true;
}

void StreamTask::Process(const Record& record) {
  assert(initialized_);
  const Node* source = topology_.SourceOfTopic(record.topic);
  assert(source != nullptr && "record from a topic this task does not read");
  if (source->partitioning == SourcePartitioning::kByKey && !record.key.empty() &&
      Misrouted(*source, record)) {
    return;
  }
  ++processed_;
  stream_time_ = std::max(stream_time_, record.timestamp_ms);
  DeliverAsOne(source->children, record);
  PunctuateStreamTime();
}

void StreamTask::DeliverAsOne(const std::vector<std::string>& children, const Record& record) {
  state_->SetSavepoint();
  processing_record_ = true;
  try {
    for (const auto& child : children) Deliver(child, record);
  } catch (const ProcessorFailure& failure) {
    // A poison record must not stop the task, nor leave half its writes in the stores (or its
    // deferred forwards): they are undone and the record is kept, with the reason, in the DLQ.
    state_->RollbackToSavepoint();
    UndoDeferred();
    SendToDlq(record, failure.what(), failure.node());
  } catch (...) {
    processing_record_ = false;  // the task fails; its buffered writes are dropped with it
    deferred_undo_.clear();
    throw;
  }
  processing_record_ = false;
  deferred_undo_.clear();
}

int64_t StreamTask::DeferredCharge(const Record& record) {
  size_t bytes = record.key.size() + record.value.size() + record.topic.size();
  for (const Header& h : record.headers) bytes += h.key.size() + h.value.size();
  return static_cast<int64_t>(bytes + state::RecordCache::kEntryOverhead);
}

void StreamTask::ChargeDeferred(int64_t delta) {
  deferred_bytes_ += delta;
  if (cache_ != nullptr && delta != 0) cache_->AddBuffered(delta);
}

void StreamTask::Defer(const std::string& node, const Record& record) {
  const auto entry = deferred_.try_emplace(node).first;
  Deferred& d = entry->second;
  const bool replaying = collector_.Replaying();
  auto [at, inserted] = d.index.try_emplace(record.key, d.records.size());
  if (inserted) {
    if (processing_record_) deferred_undo_.push_back({entry, at->second, std::nullopt});
    d.records.push_back({record, replaying});
    ChargeDeferred(DeferredCharge(record));
    return;
  }
  DeferredRecord& slot = d.records[at->second];
  DeferredRecord next{record, replaying && slot.replaying};
  ChargeDeferred(DeferredCharge(record) - DeferredCharge(slot.record));
  if (processing_record_) deferred_undo_.push_back({entry, at->second, std::move(slot)});
  slot = std::move(next);
}

void StreamTask::UndoDeferred() {
  // Newest first: a key new to its node is then the node's last record.
  for (auto it = deferred_undo_.rbegin(); it != deferred_undo_.rend(); ++it) {
    Deferred& d = it->node->second;
    if (it->previous) {
      ChargeDeferred(DeferredCharge(it->previous->record) -
                     DeferredCharge(d.records[it->slot].record));
      d.records[it->slot] = std::move(*it->previous);
      continue;
    }
    assert(it->slot + 1 == d.records.size());
    ChargeDeferred(-DeferredCharge(d.records.back().record));
    d.index.erase(d.records.back().record.key);
    d.records.pop_back();
    if (d.records.empty()) deferred_.erase(it->node);
  }
  deferred_undo_.clear();
}

void StreamTask::DropDeferred() {
  deferred_.clear();
  ChargeDeferred(-deferred_bytes_);
}

void StreamTask::ForwardDeferred() {
  assert(initialized_);
  // Parents first: what a parent's deferred records make its children defer is forwarded in
  // the same call.
  for (const auto& name : subtopology_.nodes) {
    auto found = deferred_.find(name);
    if (found == deferred_.end()) continue;
    Deferred deferred = std::move(found->second);
    deferred_.erase(found);
    int64_t bytes = 0;
    for (const DeferredRecord& d : deferred.records) bytes += DeferredCharge(d.record);
    ChargeDeferred(-bytes);  // out of the cache's budget; what they cause is charged anew
    const Node& node = topology_.node(name);
    for (const DeferredRecord& d : deferred.records) {
      collector_.SetReplaying(d.replaying);
      try {
        DeliverAsOne(node.children, d.record);
      } catch (...) {
        collector_.SetReplaying(false);
        throw;
      }
    }
    collector_.SetReplaying(false);
  }
}

bool StreamTask::Misrouted(const Node& source, const Record& record) {
  const std::optional<int32_t> owner = collector_.PartitionFor(record.topic, record.key);
  if (!owner) return true;  // the thread has failed: nothing of this commit is kept
  if (*owner == record.partition) return false;
  if (const auto from = record.FindHeader(kReroutedHeader)) {
    // Re-produced once by key and still elsewhere: the partition count changed in between.
    // Another round would not settle it.
    SendToDlq(record,
              "misrouted again after being re-produced from " + std::string(*from) +
                  ": its key belongs to partition " + std::to_string(*owner) +
                  " (did the topic's partition count change?)",
              source.name);
    return true;
  }
  Record copy = record;
  copy.headers.push_back(
      {kReroutedHeader, std::to_string(record.partition) + "/" + std::to_string(record.offset)});
  collector_.Reroute(copy);
  return true;
}

void StreamTask::Deliver(const std::string& node_name, const Record& record) {
  const Node& node = topology_.node(node_name);
  switch (node.type) {
    case NodeType::kSink:
      collector_.Send(node.topics.front(), record);
      return;
    case NodeType::kProcessor:
      ProcessAt(node_name, record);
      return;
    case NodeType::kSource:
      assert(false && "a source cannot be a child");
      return;
  }
}

void StreamTask::ProcessAt(const std::string& node, const Record& record) {
  try {
    processors_.at(node)->Process(record);
  } catch (const ProcessorFailure&) {
    throw;  // from a descendant: already names its node
  } catch (const state::StoreFailure&) {
    throw;  // not the record's fault: the task fails (Process), the record is not dead-lettered
  } catch (const StreamThreadFailure&) {
    throw;  // nor is the engine's (an output's partition could not be learnt): the thread fails
  } catch (const std::exception& e) {
    throw ProcessorFailure(node, std::string("processor threw: ") + e.what());
  }
}

void StreamTask::SendToDlq(const Record& record, std::string_view reason, const std::string& node) {
  ++dlq_count_;
  Record dead = record;
  dead.headers.push_back({"dlq-reason", std::string(reason)});
  dead.headers.push_back({"dlq-source", topology_.application_id() + "/" + name_ + "/" + node});
  if (!record.topic.empty()) {
    dead.headers.push_back({"dlq-topic", record.topic});
    dead.headers.push_back({"dlq-partition", std::to_string(record.partition)});
    dead.headers.push_back({"dlq-offset", std::to_string(record.offset)});
  }
  collector_.Send(dlq_topic_, dead);
}

void StreamTask::PunctuateStreamTime() {
  // By index, with the punctuator copied: a punctuator may Schedule more, which reallocates.
  for (size_t i = 0; i < punctuations_.size(); ++i) {
    Punctuation& p = punctuations_[i];
    if (p.type != PunctuationType::kStreamTime) continue;
    if (p.next_ms == INT64_MIN) p.next_ms = stream_time_ + p.interval.count();
    if (stream_time_ < p.next_ms) continue;
    // Fire once for the newest due time; skipped intervals are not replayed one by one.
    int64_t steps = (stream_time_ - p.next_ms) / p.interval.count() + 1;
    p.next_ms += steps * p.interval.count();
    RunPunctuator(Punctuator(p.punctuator), p.node, stream_time_);
  }
}

void StreamTask::PunctuateWallClock(int64_t wall_clock_ms) {
  if (!initialized_) return;
  for (size_t i = 0; i < punctuations_.size(); ++i) {
    Punctuation& p = punctuations_[i];
    if (p.type != PunctuationType::kWallClockTime || wall_clock_ms < p.next_ms) continue;
    int64_t steps = (wall_clock_ms - p.next_ms) / p.interval.count() + 1;
    p.next_ms += steps * p.interval.count();
    RunPunctuator(Punctuator(p.punctuator), p.node, wall_clock_ms);
  }
}

int64_t StreamTask::NextWallClockPunctuation() const {
  int64_t next = std::numeric_limits<int64_t>::max();
  if (!initialized_) return next;
  for (const Punctuation& p : punctuations_) {
    if (p.type == PunctuationType::kWallClockTime) next = std::min(next, p.next_ms);
  }
  return next;
}

void StreamTask::RunPunctuator(const Punctuator& punctuator, const std::string& node,
                               int64_t timestamp_ms) {
  try {
    punctuator(timestamp_ms);
  } catch (const state::StoreFailure&) {
    throw;  // as in ProcessAt: fails the task
  } catch (const StreamThreadFailure&) {
    throw;  // as in ProcessAt: fails the thread
  } catch (const std::exception& e) {
    // There is no record to dead-letter; the failure is recorded and the task goes on.
    Record marker;
    marker.timestamp_ms = timestamp_ms;
    SendToDlq(marker, std::string("punctuator threw: ") + e.what(), node);
  }
}

void StreamTask::Close() {
  if (!initialized_) return;
  for (auto it = subtopology_.nodes.rbegin(); it != subtopology_.nodes.rend(); ++it) {
    auto p = processors_.find(*it);
    if (p != processors_.end()) p->second->Close();
  }
  processors_.clear();
  contexts_.clear();
  punctuations_.clear();
  DropDeferred();
  initialized_ = false;
}

}  // namespace cm::topology
