#include "topology/stream_task.h"

#include <algorithm>
#include <cassert>
#include <exception>
#include <stdexcept>

namespace cm::topology {

class StreamTask::NodeContext final : public ProcessorContext {
 public:
  NodeContext(StreamTask& task, const Node& node) : task_(task), node_(node) {}

  void Forward(const Record& record) override {
    for (const auto& child : node_.children) task_.Deliver(child, record);
  }
  void ForwardTo(std::string_view child, const Record& record) override {
    auto it = std::find(node_.children.begin(), node_.children.end(), child);
    assert(it != node_.children.end() && "ForwardTo names a node that is not a child");
    task_.Deliver(*it, record);
  }
  void SendToDlq(const Record& record, std::string_view reason) override {
    task_.SendToDlq(record, reason, node_.name);
  }
  state::KeyValueStore& GetKeyValueStore(std::string_view name) override {
    CheckConnected(name);
    auto* store = task_.state_->key_value_store(name);
    assert(store != nullptr && "not a key-value store");
    return *store;
  }
  state::WindowStore& GetWindowStore(std::string_view name) override {
    CheckConnected(name);
    auto* store = task_.state_->window_store(name);
    assert(store != nullptr && "not a window store");
    return *store;
  }
  state::TimerStore& GetTimerStore(std::string_view name) override {
    CheckConnected(name);
    auto* store = task_.state_->timer_store(name);
    assert(store != nullptr && "not a timer store");
    return *store;
  }
  void Schedule(std::chrono::milliseconds interval, PunctuationType type,
                Punctuator punctuator) override {
    assert(interval.count() > 0);
    int64_t start = type == PunctuationType::kStreamTime
                        ? (task_.stream_time_ == INT64_MIN ? INT64_MIN : task_.stream_time_)
                        : task_.init_wall_clock_ms_;
    int64_t next = start == INT64_MIN ? INT64_MIN : start + interval.count();
    task_.punctuations_.push_back({interval, type, std::move(punctuator), next, node_.name});
  }
  int64_t StreamTime() const override { return task_.stream_time_; }
  const std::string& TaskId() const override { return task_.name_; }
  int32_t Partition() const override { return task_.id_.partition; }
  const std::string& ApplicationId() const override { return task_.topology_.application_id(); }

 private:
  void CheckConnected([[maybe_unused]] std::string_view store) const {
    assert(std::find(node_.stores.begin(), node_.stores.end(), store) != node_.stores.end() &&
           "processor asks for a store it is not connected to");
  }
  StreamTask& task_;
  const Node& node_;
};

StreamTask::StreamTask(const Topology& topology, TaskId id,
                       std::unique_ptr<state::TaskState> state, RecordCollector& collector,
                       std::string dlq_topic)
    : topology_(topology),
      subtopology_(topology.subtopologies().at(static_cast<size_t>(id.subtopology))),
      id_(id),
      name_(id.ToString()),
      state_(std::move(state)),
      collector_(collector),
      dlq_topic_(std::move(dlq_topic)) {}

StreamTask::~StreamTask() = default;

void StreamTask::Init(int64_t wall_clock_ms) {
  assert(!initialized_);
  init_wall_clock_ms_ = wall_clock_ms;
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
  ++processed_;
  stream_time_ = std::max(stream_time_, record.timestamp_ms);
  for (const auto& child : source->children) Deliver(child, record);
  PunctuateStreamTime();
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
  } catch (const std::exception& e) {
    // A poison record must not stop the task; it is kept, with the reason, in the DLQ.
    SendToDlq(record, std::string("processor threw: ") + e.what(), node);
  }
}

void StreamTask::SendToDlq(const Record& record, std::string_view reason,
                           const std::string& node) {
  ++dlq_count_;
  Record dead = record;
  dead.headers.push_back({"dlq-reason", std::string(reason)});
  dead.headers.push_back(
      {"dlq-source", topology_.application_id() + "/" + name_ + "/" + node});
  if (!record.topic.empty()) {
    dead.headers.push_back({"dlq-topic", record.topic});
    dead.headers.push_back({"dlq-partition", std::to_string(record.partition)});
    dead.headers.push_back({"dlq-offset", std::to_string(record.offset)});
  }
  collector_.Send(dlq_topic_, dead);
}

void StreamTask::PunctuateStreamTime() {
  for (auto& p : punctuations_) {
    if (p.type != PunctuationType::kStreamTime) continue;
    if (p.next_ms == INT64_MIN) p.next_ms = stream_time_ + p.interval.count();
    if (stream_time_ < p.next_ms) continue;
    // Fire once for the newest due time; skipped intervals are not replayed one by one.
    int64_t fire_at = stream_time_;
    int64_t steps = (stream_time_ - p.next_ms) / p.interval.count() + 1;
    p.next_ms += steps * p.interval.count();
    p.punctuator(fire_at);
  }
}

void StreamTask::PunctuateWallClock(int64_t wall_clock_ms) {
  if (!initialized_) return;
  for (auto& p : punctuations_) {
    if (p.type != PunctuationType::kWallClockTime || wall_clock_ms < p.next_ms) continue;
    int64_t steps = (wall_clock_ms - p.next_ms) / p.interval.count() + 1;
    p.next_ms += steps * p.interval.count();
    p.punctuator(wall_clock_ms);
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
  initialized_ = false;
}

}  // namespace cm::topology
