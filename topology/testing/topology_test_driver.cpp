#include "topology/testing/topology_test_driver.h"

#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <deque>
#include <filesystem>
#include <set>

#include "topology/kafka/partitioner.h"
#include "topology/runtime/outbox.h"
#include "topology/runtime/state_restorer.h"

namespace cm::topology {

using state::Result;
using state::Status;

// Captures sends; records sent to a topic some sub-topology reads (a repartition topic) are
// routed back in, as the broker would deliver them. While a replayed input (one carrying
// kReplayedHeader) is processed, it does what the engine's collector does after a reset: drops
// outputs to external topics and marks those to internal ones.
class TopologyTestDriver::Collector final : public RecordCollector {
 public:
  explicit Collector(TopologyTestDriver& driver) : driver_(driver) {}
  void Send(const std::string& topic, const Record& record) override {
    const bool internal = driver_.topology_.SubTopologyOfSource(topic).has_value();
    if (replaying_ && !internal) return;
    Record sent = record;
    if (replaying_) sent.headers.push_back({kReplayedHeader, "1"});
    outputs_[topic].push_back(sent);
    if (internal) pending_.emplace_back(topic, std::move(sent));
  }
  std::optional<int32_t> PartitionFor(const std::string&, const std::string& key) override {
    return PartitionForKey(key, driver_.options_.partitions);
  }
  // The copy goes back in through Send, which routes a source topic's records by key.
  void Reroute(const Record& record) override { Send(record.topic, record); }
  bool Replaying() const override { return replaying_; }
  void SetReplaying(bool replaying) override { replaying_ = replaying; }
  // The driver has no reset positions: a replay is one record at a time (kReplayedHeader).
  bool ReplayPending() const override { return false; }
  bool CaughtUp(const std::string& topic) const override {
    auto held = driver_.held_.find(topic);
    return held == driver_.held_.end() || held->second.empty();
  }
  std::map<std::string, std::vector<Record>> outputs_;
  std::deque<std::pair<std::string, Record>> pending_;
  bool replaying_ = false;

 private:
  TopologyTestDriver& driver_;
};

TopologyTestDriver::TopologyTestDriver(const Topology& topology, TestDriverOptions options)
    : topology_(topology),
      options_(std::move(options)),
      wall_clock_ms_(options_.wall_clock_start_ms) {}

TopologyTestDriver::~TopologyTestDriver() {
  for (auto& [id, task] : tasks_) task->Close();
  tasks_.clear();
  if (owns_directory_) std::filesystem::remove_all(options_.state_directory);
}

Result<std::unique_ptr<TopologyTestDriver>> TopologyTestDriver::Create(const Topology& topology,
                                                                       TestDriverOptions options) {
  assert(options.partitions > 0);
  std::unique_ptr<TopologyTestDriver> driver(new TopologyTestDriver(topology, std::move(options)));
  if (driver->options_.state_directory.empty()) {
    // The pid and the driver's address make the name unique across concurrent drivers.
    auto dir = std::filesystem::temp_directory_path() /
               ("cm-test-driver-" + std::to_string(::getpid()) + "-" +
                std::to_string(reinterpret_cast<uintptr_t>(driver.get())) + "-" +
                std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    driver->options_.state_directory = dir.string();
    driver->owns_directory_ = true;
  }
  driver->resources_ = std::make_unique<state::StateResources>(64ULL << 20);
  if (driver->options_.cache_max_bytes > 0) {
    driver->cache_ = std::make_unique<state::RecordCache>(driver->options_.cache_max_bytes);
  }
  driver->collector_ = std::make_unique<Collector>(*driver);
  if (auto s = driver->OpenTasks(); !s.ok()) return s;
  return driver;
}

Status TopologyTestDriver::OpenTasks() {
  for (const auto& sub : topology_.subtopologies()) {
    for (int32_t p = 0; p < options_.partitions; ++p) {
      TaskId id{sub.id, p};
      state::TaskStateOptions so;
      so.directory = options_.state_directory + "/" + id.ToString();
      so.stores = sub.stores;
      so.resources = resources_.get();
      so.cache = cache_.get();
      auto state = state::TaskState::Open(so);
      if (!state.ok()) return state.status();
      const auto stream_time = (*state)->GetCheckpoint(kCheckpointStreamTime);
      auto task = std::make_unique<StreamTask>(topology_, id, std::move(state).value(), *collector_,
                                               options_.dlq_topic, cache_.get());
      task->Init(wall_clock_ms_, stream_time ? std::stoll(*stream_time) : INT64_MIN);
      tasks_[id] = std::move(task);
    }
  }
  return Status::OK();
}

void TopologyTestDriver::PipeInput(const std::string& topic, const std::string& key,
                                   const std::string& value, int64_t timestamp_ms,
                                   std::vector<Header> headers) {
  PipeInputToPartition(topic, std::nullopt, key, value, timestamp_ms, std::move(headers));
}

void TopologyTestDriver::PipeInputToPartition(const std::string& topic,
                                              std::optional<int32_t> partition,
                                              const std::string& key, const std::string& value,
                                              int64_t timestamp_ms, std::vector<Header> headers) {
  assert(!partition || (*partition >= 0 && *partition < options_.partitions));
  Record r;
  r.key = key;
  r.value = value;
  r.timestamp_ms = timestamp_ms;
  r.headers = std::move(headers);
  if (auto held = held_.find(topic); held != held_.end()) {
    held->second.emplace_back(partition, std::move(r));
    return;
  }
  Route(topic, std::move(r), partition);
}

void TopologyTestDriver::HoldInput(const std::string& topic) { held_[topic]; }

void TopologyTestDriver::ReleaseInput(const std::string& topic) {
  auto held = held_.find(topic);
  if (held == held_.end()) return;
  auto waiting = std::move(held->second);
  held_.erase(held);
  for (auto& [partition, r] : waiting) Route(topic, std::move(r), partition);
}

void TopologyTestDriver::Route(const std::string& topic, Record record,
                               std::optional<int32_t> partition) {
  auto sub = topology_.SubTopologyOfSource(topic);
  assert(sub && "no sub-topology reads this topic");
  record.topic = topic;
  record.partition = partition ? *partition : PartitionForKey(record.key, options_.partitions);
  record.offset = next_offset_[topic + "/" + std::to_string(record.partition)]++;
  collector_->replaying_ = std::any_of(record.headers.begin(), record.headers.end(),
                                       [](const Header& h) { return h.key == kReplayedHeader; });
  tasks_.at(TaskId{*sub, record.partition})->Process(record);
  collector_->replaying_ = false;
  DeliverRepartitioned();
  // As a stream thread: buffered writes and deferred records over the cache's budget commit.
  if (!routing_ && cache_ != nullptr && cache_->commit_needed()) Commit();
}

void TopologyTestDriver::DeliverRepartitioned() {
  // Repartitioned records are delivered after the record that caused them, like a broker would.
  if (routing_) return;
  routing_ = true;
  while (!collector_->pending_.empty()) {
    auto [t, r] = std::move(collector_->pending_.front());
    collector_->pending_.pop_front();
    Route(t, std::move(r), std::nullopt);
  }
  routing_ = false;
}

std::vector<Record> TopologyTestDriver::ReadOutput(const std::string& topic) {
  auto it = collector_->outputs_.find(topic);
  if (it == collector_->outputs_.end()) return {};
  std::vector<Record> out = std::move(it->second);
  collector_->outputs_.erase(it);
  return out;
}

void TopologyTestDriver::AdvanceWallClock(int64_t delta_ms) {
  wall_clock_ms_ += delta_ms;
  for (auto& [id, task] : tasks_) task->PunctuateWallClock(wall_clock_ms_);
  DeliverRepartitioned();
}

void TopologyTestDriver::Commit() {
  // As the engine's commit: deferred forwards first, their outputs and writes part of it.
  for (auto& [id, task] : tasks_) task->ForwardDeferred();
  DeliverRepartitioned();
  for (auto& [id, task] : tasks_) {
    task->state().DropNoOpDeletes();
    state::CheckpointEntries checkpoint;
    if (task->stream_time() != INT64_MIN)
      checkpoint[kCheckpointStreamTime] = std::to_string(task->stream_time());
    auto s = task->state().Commit(checkpoint);
    if (!s.ok()) throw std::runtime_error("commit failed: " + s.ToString());
  }
}

Status TopologyTestDriver::Restart() {
  for (auto& [id, task] : tasks_) task->Close();
  tasks_.clear();  // uncommitted writes are lost, as in a crash
  return OpenTasks();
}

StreamTask& TopologyTestDriver::TaskFor(const std::string& topic, const std::string& key) {
  auto sub = topology_.SubTopologyOfSource(topic);
  assert(sub);
  return *tasks_.at(TaskId{*sub, PartitionForKey(key, options_.partitions)});
}

StreamTask& TopologyTestDriver::Task(int subtopology, int32_t partition) {
  return *tasks_.at(TaskId{subtopology, partition});
}

}  // namespace cm::topology
