#include "topology/runtime/state_restorer.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cassert>
#include <nlohmann/json.hpp>

#include "topology/common/log.h"
#include "topology/kafka/kafka_client.h"
#include "topology/runtime/reset_marker.h"

namespace cm::topology {

using state::Result;
using state::Status;

namespace {

int64_t ReadCheckpoint(const state::TaskState& state, const std::string& key) {
  auto v = state.GetCheckpoint(key);
  return v ? std::stoll(*v) : 0;
}

}  // namespace

StateRestorer::StateRestorer(rd_kafka_t* consumer, const StreamsConfig& config,
                             const Topology& topology, TaskId task, state::TaskState& state)
    : consumer_(consumer), config_(config), topology_(topology), task_(task), state_(state) {}

StateRestorer::~StateRestorer() = default;

Status StateRestorer::Prepare() {
  started_ = std::chrono::steady_clock::now();
  const auto& sub = topology_.subtopologies().at(static_cast<size_t>(task_.subtopology));
  const std::string& app = topology_.application_id();
  Phase log;
  log.topic = Topology::CommitTopic(app, sub.id);
  log.from = ReadCheckpoint(state_, kCheckpointCommits);
  phases_.push_back(std::move(log));
  for (const auto& store : sub.stores) {
    if (!store.logged) continue;
    Phase changelog;
    changelog.topic = Topology::ChangelogTopic(app, store.name);
    changelog.store = store.name;
    changelog.from = ReadCheckpoint(state_, CheckpointChangelogKey(store.name));
    changelog_positions_[store.name] = changelog.from;
    phases_.push_back(std::move(changelog));
  }
  for (const auto& topic : sub.source_topics) {
    if (auto v = state_.GetCheckpoint(CheckpointInputKey(topic))) inputs_[topic] = std::stoll(*v);
  }
  if (auto v = state_.GetCheckpoint(kCheckpointStreamTime)) stream_time_ = std::stoll(*v);
  auto reset = ReadLatestReset(consumer_, Topology::ResetsTopic(app));
  if (!reset.ok()) return reset.status();
  if (const auto& marker = *reset) {
    bool has_state = state_.GetCheckpoint(kCheckpointCommits).has_value();
    if (has_state && state_.GetCheckpoint(kCheckpointReset) != marker->id) {
      return Status::Aborted("the local state predates reset " + marker->id +
                             " of the application (cmstream replay)");
    }
    reset_id_ = marker->id;
    // Records before the marker's offsets were "cleared": no restore reads them again.
    for (auto& phase : phases_) {
      phase.from = std::max(phase.from, marker->Offset(phase.topic, task_.partition).value_or(0));
      if (!phase.store.empty()) changelog_positions_[phase.store] = phase.from;
    }
    if (!has_state) {
      for (const auto& topic : sub.source_topics) {
        if (auto offset = marker->Offset(topic, task_.partition)) inputs_[topic] = *offset;
      }
    }
    for (const auto& topic : sub.source_topics) {
      if (auto offset = marker->Published(topic, task_.partition)) published_[topic] = *offset;
    }
  }
  commit_position_ = phases_.front().from;
  for (auto& phase : phases_) {
    if (auto s = QueryWatermarks(consumer_, phase.topic, task_.partition, phase.low, phase.high);
        !s.ok())
      return s;
    if (phase.from > phase.high) {
      return Status::Aborted(phase.topic + "[" + std::to_string(task_.partition) + "] ends at " +
                             std::to_string(phase.high) + " but the local state reflects offset " +
                             std::to_string(phase.from) + ": the broker lost this log");
    }
    if (phase.from < phase.low) {
      // Restoring from here would build a partial store; refuse rather than serve wrong data.
      return Status::Corruption(
          phase.topic + "[" + std::to_string(task_.partition) + "] now starts at offset " +
          std::to_string(phase.low) + " but the local state needs it from " +
          std::to_string(phase.from) +
          ": the broker dropped records this state depends on (the embedded broker keeps about 5 "
          "MiB per partition); reset the application with `cmstream replay`");
    }
    total_ += static_cast<uint64_t>(phase.high - phase.from);
    phase.next = phase.from;
    phase.done = phase.from >= phase.high;
  }
  Log(LogLevel::kInfo, "restore_start", {{"task", task_.ToString()}, {"records", total_}});
  for (const auto& phase : phases_) {
    Log(LogLevel::kInfo, "restore_plan",
        {{"task", task_.ToString()},
         {"topic", phase.topic},
         {"from", phase.from},
         {"to", phase.high},
         {"logStart", phase.low}});
  }
  prepared_ = true;
  return Status::OK();
}

std::vector<RestoreRead> StateRestorer::CommitLogReads() const {
  std::vector<RestoreRead> reads;
  const Phase& log = phases_.front();
  if (!log.done) reads.push_back({log.topic, task_.partition, log.next, log.high});
  return reads;
}

std::vector<RestoreRead> StateRestorer::ChangelogReads() const {
  std::vector<RestoreRead> reads;
  if (!phases_.front().done) return reads;
  for (size_t i = 1; i < phases_.size(); ++i) {
    const Phase& phase = phases_[i];
    if (!phase.done) reads.push_back({phase.topic, task_.partition, phase.next, phase.high});
  }
  return reads;
}

bool StateRestorer::read_all() const {
  return prepared_ &&
         std::all_of(phases_.begin(), phases_.end(), [](const Phase& p) { return p.done; });
}

StateRestorer::Phase* StateRestorer::FindPhase(std::string_view topic) {
  for (Phase& phase : phases_) {
    if (phase.topic == topic) return &phase;
  }
  return nullptr;
}

Status StateRestorer::Apply(const rd_kafka_message_t& m) {
  Phase* phase = FindPhase(rd_kafka_topic_name(m.rkt));
  if (phase == nullptr || phase->done || m.offset < phase->next) return Status::OK();
  phase->next = m.offset + 1;
  ++restored_;
  if (phase->store.empty()) {
    std::string_view value(static_cast<const char*>(m.payload), m.len);
    std::string_view type = LastHeader(m, kCommitRecordTypeHeader).value_or("seal");
    if (auto s = ApplyCommitRecord(type, value, m.offset); !s.ok()) return s;
    commit_position_ = m.offset + 1;
  } else if (Sealed(phase->store, m.offset)) {
    state::StoreChange change;
    change.key.assign(static_cast<const char*>(m.key), m.key_len);
    if (m.payload != nullptr) change.value.emplace(static_cast<const char*>(m.payload), m.len);
    phase->batch.push_back(std::move(change));
    if (phase->batch.size() >= config_.restore_batch_records) {
      if (auto s = Flush(*phase, phase->next); !s.ok()) return s;
    }
  } else {
    ++skipped_;
  }
  return phase->next >= phase->high ? EndPhase(*phase) : Status::OK();
}

Status StateRestorer::EndOfPartition(const std::string& topic) {
  Phase* phase = FindPhase(topic);
  if (phase == nullptr || phase->done) return Status::OK();
  return EndPhase(*phase);
}

Status StateRestorer::EndPhase(Phase& phase) {
  phase.done = true;
  if (!phase.store.empty()) {
    if (auto s = Flush(phase, std::max(phase.next, phase.high)); !s.ok()) return s;
  }
  Log(LogLevel::kInfo, "restore_phase_done",
      {{"task", task_.ToString()},
       {"topic", phase.topic},
       {"from", phase.from},
       {"to", phase.high},
       {"records", phase.high - phase.from}});
  return Status::OK();
}

Status StateRestorer::Finish() {
  assert(read_all());
  if (unpublished_) {
    for (const auto& record : unpublished_outbox_) {
      if (auto s = DecodeOutbox(record, unpublished_->outputs); !s.ok()) return s;
    }
  }
  unpublished_outbox_.clear();
  // The restored state now reflects the commit log up to its end and the latest sealed inputs.
  state::CheckpointEntries checkpoint{{kCheckpointCommits, std::to_string(commit_position_)}};
  if (!reset_id_.empty()) checkpoint[kCheckpointReset] = reset_id_;
  for (const auto& [topic, offset] : inputs_)
    checkpoint[CheckpointInputKey(topic)] = std::to_string(offset);
  if (stream_time_ != INT64_MIN) checkpoint[kCheckpointStreamTime] = std::to_string(stream_time_);
  if (auto s = state_.Commit(checkpoint); !s.ok()) return s;  // nothing is pending: checkpoint only
  // A restored state is the costliest to build again: a crash from now on restores from here.
  if (auto s = state_.Flush(false); !s.ok()) return s;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started_)
                .count();
  Log(LogLevel::kInfo, "restore_done",
      {{"task", task_.ToString()},
       {"records", restored_},
       {"skippedUnsealed", skipped_},
       {"ms", ms}});
  return Status::OK();
}

Status StateRestorer::ApplyCommitRecord(std::string_view type, std::string_view value,
                                        int64_t offset) {
  if (type == "outbox") {
    outbox_records_.emplace(offset, std::string(value));
    return Status::OK();
  }
  auto j = nlohmann::json::parse(value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Corruption("unreadable commit record in " + phases_.front().topic);
  }
  if (type == "published") {
    if (unpublished_ && unpublished_->writer == j.value("writer", "") &&
        unpublished_->seq == j.value("seq", uint64_t{0})) {
      unpublished_.reset();
    }
    return Status::OK();
  }
  if (j.contains("inputs")) {
    for (const auto& [topic, offset] : j["inputs"].items()) inputs_[topic] = offset.get<int64_t>();
  }
  if (auto t = j.find("streamTime"); t != j.end() && t->is_number_integer()) {
    stream_time_ = t->get<int64_t>();
  }
  if (j.contains("changelogs")) {
    for (const auto& [store, range] : j["changelogs"].items()) {
      sealed_ranges_[store].emplace_back(range.at(0).get<int64_t>(), range.at(1).get<int64_t>());
    }
  }
  // A later seal means the outputs of earlier ones were published before it was written.
  unpublished_.reset();
  if (j.contains("outbox")) {
    UnpublishedOutputs u;
    u.writer = j.value("writer", "");
    u.seq = j.value("seq", uint64_t{0});
    int64_t first = j["outbox"].at(0).get<int64_t>();
    int64_t end = j["outbox"].at(1).get<int64_t>();
    // Only the last seal's outputs can be unpublished: decode them once the log is read.
    unpublished_outbox_.clear();
    for (auto it = outbox_records_.lower_bound(first);
         it != outbox_records_.end() && it->first < end; ++it) {
      unpublished_outbox_.push_back(std::move(it->second));
    }
    if (j.contains("sinks")) {
      for (const auto& [partition, from] : j["sinks"].items())
        u.scan_from[partition] = from.get<int64_t>();
    }
    unpublished_ = std::move(u);
  }
  // Outbox records before this seal that it does not name belong to commits that never sealed.
  outbox_records_.clear();
  return Status::OK();
}

bool StateRestorer::Sealed(const std::string& store, int64_t offset) {
  // A broker that filters aborted transactions already hides unsealed records.
  if (config_.broker_filters_aborted && config_.guarantee == ProcessingGuarantee::kExactlyOnce) {
    return true;
  }
  auto& ranges = sealed_ranges_[store];
  size_t& i = range_cursor_[store];
  while (i < ranges.size() && ranges[i].second <= offset) ++i;
  return i < ranges.size() && ranges[i].first <= offset;
}

Status StateRestorer::Flush(Phase& phase, int64_t next_offset) {
  changelog_positions_[phase.store] = next_offset;
  state::CheckpointEntries checkpoint{
      {CheckpointChangelogKey(phase.store), std::to_string(next_offset)}};
  auto s = state_.ApplyRestored(phase.store, phase.batch, checkpoint);
  phase.batch.clear();
  return s;
}

}  // namespace cm::topology
