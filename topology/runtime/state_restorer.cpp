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

// What an undecided record holds in memory.
size_t UndecidedBytes(const state::StoreChange& change) {
  return sizeof(state::StoreChange) + sizeof(int64_t) + change.key.size() +
         (change.value ? change.value->size() : 0);
}

int64_t ReadCheckpoint(const state::TaskState& state, const std::string& key) {
  auto v = state.GetCheckpoint(key);
  return v ? std::stoll(*v) : 0;
}

// {"store": [[begin, end], ...]} as GapsToJson writes it; nullopt when malformed.
std::optional<ChangelogGaps> ParseGaps(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  ChangelogGaps gaps;
  for (const auto& [store, ranges] : j.items()) {
    if (!ranges.is_array()) return std::nullopt;
    for (const auto& range : ranges) {
      if (!range.is_array() || range.size() != 2 || !range[0].is_number_integer() ||
          !range[1].is_number_integer()) {
        return std::nullopt;
      }
      gaps[store].emplace_back(range[0].get<int64_t>(), range[1].get<int64_t>());
    }
  }
  return gaps;
}

}  // namespace

void AddGap(ChangelogGaps& gaps, const std::string& store, int64_t begin, int64_t end) {
  if (begin >= end) return;
  auto& ranges = gaps[store];
  if (!ranges.empty() && ranges.back().second >= begin) {
    ranges.back().second = std::max(ranges.back().second, end);
  } else {
    ranges.emplace_back(begin, end);
  }
}

nlohmann::json GapsToJson(const ChangelogGaps& gaps) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [store, ranges] : gaps) {
    if (!ranges.empty()) j[store] = ranges;
  }
  return j;
}

StateRestorer::StateRestorer(rd_kafka_t* consumer, const StreamsConfig& config,
                             const Topology& topology, TaskId task, state::TaskState& state,
                             StateWriter& writer)
    : consumer_(consumer),
      config_(config),
      topology_(topology),
      task_(task),
      state_(state),
      writer_(writer) {}

StateRestorer::~StateRestorer() {
  // The writes use the task's state, which goes right after its restorer. A restore that
  // stops half-way (the task revoked, the thread failing) leaves its checkpoint at its last
  // write, so what failed here is read again by the next restore.
  [[maybe_unused]] const Status s = writer_.Wait(lane_);
}

std::vector<std::pair<std::string, std::string>> StateRestorer::LogTopics() const {
  const auto& sub = topology_.subtopologies().at(static_cast<size_t>(task_.subtopology));
  const std::string& app = topology_.application_id();
  std::vector<std::pair<std::string, std::string>> topics{{Topology::CommitTopic(app, sub.id), ""}};
  for (const auto& store : sub.stores) {
    if (store.logged) topics.emplace_back(Topology::ChangelogTopic(app, store.name), store.name);
  }
  return topics;
}

std::vector<TopicPartition> StateRestorer::Logs() const {
  std::vector<TopicPartition> logs;
  for (auto& [topic, store] : LogTopics()) logs.emplace_back(std::move(topic), task_.partition);
  return logs;
}

Result<RestoreOffsets> StateRestorer::QueryOffsets(const std::vector<TopicPartition>& logs) const {
  RestoreOffsets offsets;
  auto reset = ReadLatestReset(consumer_, Topology::ResetsTopic(topology_.application_id()));
  if (!reset.ok()) return reset.status();
  offsets.reset = std::move(reset).value();
  if (auto s = QueryWatermarks(consumer_, logs, offsets.watermarks); !s.ok()) return s;
  return offsets;
}

Status StateRestorer::Prepare(const RestoreOffsets& offsets) {
  started_ = std::chrono::steady_clock::now();
  const auto& sub = topology_.subtopologies().at(static_cast<size_t>(task_.subtopology));
  for (auto& [topic, store] : LogTopics()) {
    Phase phase;
    phase.topic = std::move(topic);
    phase.store = std::move(store);
    if (phase.store.empty()) {
      phase.from = ReadCheckpoint(state_, kCheckpointCommits);
    } else {
      phase.from = ReadCheckpoint(state_, CheckpointChangelogKey(phase.store));
      changelog_positions_[phase.store] = phase.from;
    }
    phases_.push_back(std::move(phase));
  }
  for (const auto& topic : sub.source_topics) {
    if (auto v = state_.GetCheckpoint(CheckpointInputKey(topic))) inputs_[topic] = std::stoll(*v);
  }
  if (auto v = state_.GetCheckpoint(kCheckpointStreamTime)) stream_time_ = std::stoll(*v);
  // A state restored from nothing learns every gap it reads past; one restored from a local
  // checkpoint knows those below it if the checkpoint lists them.
  if (!state_.GetCheckpoint(kCheckpointCommits)) {
    gaps_.emplace();
  } else if (auto v = state_.GetCheckpoint(kCheckpointGaps)) {
    gaps_ = ParseGaps(nlohmann::json::parse(*v, nullptr, false));
    if (!gaps_) return Status::Corruption("unreadable changelog gaps in the local checkpoint");
  }
  if (const auto& marker = offsets.reset) {
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
    auto watermarks = offsets.watermarks.find({phase.topic, task_.partition});
    if (watermarks == offsets.watermarks.end()) {
      return Status::Unavailable("no offsets of " + phase.topic + "[" +
                                 std::to_string(task_.partition) + "]");
    }
    std::tie(phase.low, phase.high) = watermarks->second;
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
    if (phase.store.empty()) {
      // The last seal usually decides everything: read the commit log's tail first.
      commit_from_ = phase.from;
      if (phase.high - phase.from > config_.restore_commit_tail) {
        tail_ = true;
        phase.from = phase.high - config_.restore_commit_tail;
      }
    }
    total_ += static_cast<uint64_t>(phase.high - phase.from);
    phase.next = phase.from;
    phase.done = phase.read_to_end = phase.from >= phase.high;
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

std::vector<RestoreRead> StateRestorer::Reads() const {
  std::vector<RestoreRead> reads;
  for (const Phase& phase : phases_) {
    if (!phase.read_to_end) reads.push_back({phase.topic, task_.partition, phase.next});
  }
  return reads;
}

bool StateRestorer::Waiting(std::string_view topic) const {
  const Phase* phase = FindPhase(topic);
  return phase != nullptr && Waiting(*phase);
}

bool StateRestorer::Waiting(const Phase& phase) const {
  return !phase.undecided.empty() && phase.undecided_bytes >= config_.restore_undecided_bytes;
}

bool StateRestorer::ReadToEnd(std::string_view topic) const {
  const Phase* phase = FindPhase(topic);
  return phase == nullptr || phase->read_to_end;
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

const StateRestorer::Phase* StateRestorer::FindPhase(std::string_view topic) const {
  return const_cast<StateRestorer*>(this)->FindPhase(topic);
}

Status StateRestorer::Apply(const rd_kafka_message_t& m) {
  Phase* phase = FindPhase(rd_kafka_topic_name(m.rkt));
  if (phase == nullptr || phase->read_to_end || m.offset < phase->next) return Status::OK();
  phase->next = m.offset + 1;
  ++phase->read;
  ++restored_;
  if (phase->store.empty()) {
    std::string_view value(static_cast<const char*>(m.payload), m.len);
    std::string_view type = LastHeader(m, kCommitRecordTypeHeader).value_or("seal");
    if (auto s = ApplyCommitRecord(type, value, m.offset); !s.ok()) return s;
    commit_position_ = m.offset + 1;
    if (phase->next >= phase->high) return EndPhase(*phase);
    if (type == "outbox" || type == "published") return Status::OK();  // no seal: decides nothing
    for (size_t i = 1; i < phases_.size(); ++i) {
      if (auto s = Decide(phases_[i]); !s.ok()) return s;
    }
    return Status::OK();
  }
  state::StoreChange change;
  change.key.assign(static_cast<const char*>(m.key), m.key_len);
  if (m.payload != nullptr) change.value.emplace(static_cast<const char*>(m.payload), m.len);
  // Behind an undecided record every later one is undecided too: seals come in offset order.
  const Seal seal = phase->undecided.empty() ? SealOf(phase->store, m.offset) : Seal::kUnknown;
  if (seal == Seal::kSealed) {
    if (auto s = AddSealed(*phase, std::move(change)); !s.ok()) return s;
  } else if (seal == Seal::kUnsealed) {
    SkipUnsealed(phase->store, m.offset);
  } else {
    const bool waiting = Waiting(*phase);
    phase->undecided_bytes += UndecidedBytes(change);
    phase->undecided.push_back({m.offset, std::move(change)});
    if (!waiting && Waiting(*phase)) ++waits_;
  }
  if (phase->next >= phase->high) phase->read_to_end = true;
  return EndIfDecided(*phase);
}

Status StateRestorer::EndOfPartition(const std::string& topic) {
  Phase* phase = FindPhase(topic);
  if (phase == nullptr || phase->read_to_end) return Status::OK();
  return EndPhase(*phase);
}

Status StateRestorer::EndPhase(Phase& phase) {
  if (phase.store.empty()) {
    if (tail_ && !base_ends_) {
      // No seal in the tail lists its gaps (written before seals did): read it all.
      tail_ = false;
      RewindCommitLog(commit_from_);
      return Status::OK();
    }
    if (unpublished_ && unpublished_from_ < phase.from) {
      // The last seal's outputs may be unpublished and its outbox starts before the tail.
      RewindCommitLog(unpublished_from_);
      return Status::OK();
    }
  }
  phase.read_to_end = true;
  if (auto s = EndIfDecided(phase); !s.ok() || !phase.store.empty()) return s;
  // The whole commit log is read: every changelog record held so far is decided now.
  for (size_t i = 1; i < phases_.size(); ++i) {
    if (auto s = Decide(phases_[i]); !s.ok()) return s;
  }
  return Status::OK();
}

Status StateRestorer::EndIfDecided(Phase& phase) {
  if (phase.done || !phase.read_to_end || !phase.undecided.empty()) return Status::OK();
  phase.done = true;
  if (!phase.store.empty()) {
    if (auto s = Flush(phase); !s.ok()) return s;
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
  if (auto s = writer_.Wait(lane_); !s.ok()) return s;
  // The restored state now reflects the commit log up to its end and the latest sealed inputs.
  state::CheckpointEntries checkpoint{{kCheckpointCommits, std::to_string(commit_position_)}};
  if (!reset_id_.empty()) checkpoint[kCheckpointReset] = reset_id_;
  for (const auto& [topic, offset] : inputs_)
    checkpoint[CheckpointInputKey(topic)] = std::to_string(offset);
  if (stream_time_ != INT64_MIN) checkpoint[kCheckpointStreamTime] = std::to_string(stream_time_);
  if (gaps_) checkpoint[kCheckpointGaps] = GapsToJson(*gaps_).dump();
  // Nothing is pending: the checkpoint only. The reader flushes it (ChangelogReader).
  if (auto s = state_.Commit(checkpoint); !s.ok()) return s;
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started_)
                .count();
  Log(LogLevel::kInfo, "restore_done",
      {{"task", task_.ToString()},
       {"records", restored_},
       {"skippedUnsealed", skipped_},
       {"changelogWaits", waits_},
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
  if (auto g = j.find("gaps"); g != j.end() && !base_ends_) {
    auto gaps = ParseGaps(*g);
    auto e = j.find("ends");
    if (!gaps || e == j.end() || !e->is_object()) {
      return Status::Corruption("unreadable changelog gaps in a seal of " + phases_.front().topic);
    }
    std::map<std::string, int64_t> ends;
    for (const auto& [store, end] : e->items()) {
      if (!end.is_number_integer()) {
        return Status::Corruption("unreadable changelog ends in a seal of " +
                                  phases_.front().topic);
      }
      ends[store] = end.get<int64_t>();
    }
    base_ends_ = std::move(ends);
    gaps_ = std::move(gaps);
    gap_cursor_.clear();
  }
  // A later seal means the outputs of earlier ones were published before it was written.
  unpublished_.reset();
  if (j.contains("outbox")) {
    UnpublishedOutputs u;
    u.writer = j.value("writer", "");
    u.seq = j.value("seq", uint64_t{0});
    int64_t first = j["outbox"].at(0).get<int64_t>();
    int64_t end = j["outbox"].at(1).get<int64_t>();
    unpublished_from_ = first;
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

StateRestorer::Seal StateRestorer::SealOf(const std::string& store, int64_t offset) {
  // A broker that filters aborted transactions already hides unsealed records.
  if (config_.broker_filters_aborted && config_.guarantee == ProcessingGuarantee::kExactlyOnce) {
    return Seal::kSealed;
  }
  if (base_ends_) {
    auto end = base_ends_->find(store);
    if (end != base_ends_->end() && offset < end->second) {
      return InGap(store, offset) ? Seal::kUnsealed : Seal::kSealed;
    }
  } else if (tail_) {
    return Seal::kUnknown;  // the seal that decides what lies before the tail is not read yet
  }
  auto& ranges = sealed_ranges_[store];
  size_t& i = range_cursor_[store];
  while (i < ranges.size() && ranges[i].second <= offset) ++i;
  // Seals are read in the order their commits wrote the changelog: one that starts after the
  // record means the record's commit never sealed.
  if (i < ranges.size()) return ranges[i].first <= offset ? Seal::kSealed : Seal::kUnsealed;
  return phases_.front().done ? Seal::kUnsealed : Seal::kUnknown;
}

void StateRestorer::SkipUnsealed(const std::string& store, int64_t offset) {
  ++skipped_;
  if (gaps_) AddGap(*gaps_, store, offset, offset + 1);  // the task's seals will list it
}

bool StateRestorer::InGap(const std::string& store, int64_t offset) {
  const auto& gaps = (*gaps_)[store];
  size_t& i = gap_cursor_[store];  // asked in offset order
  while (i < gaps.size() && gaps[i].second <= offset) ++i;
  return i < gaps.size() && gaps[i].first <= offset;
}

void StateRestorer::RewindCommitLog(int64_t offset) {
  Phase& log = phases_.front();
  Log(LogLevel::kInfo, "restore_commit_log_rewound",
      {{"task", task_.ToString()}, {"from", offset}, {"tailFrom", log.from}});
  total_ += static_cast<uint64_t>(log.from - offset);
  restored_ -= log.read;  // read again below
  log.read = 0;
  log.from = log.next = offset;
  log.read_to_end = log.done = false;
  // Read again in order, the seals rebuild all of this.
  sealed_ranges_.clear();
  range_cursor_.clear();
  outbox_records_.clear();
  unpublished_outbox_.clear();
  unpublished_.reset();
  rewind_ = true;
}

Status StateRestorer::AddSealed(Phase& phase, state::StoreChange change) {
  if (phase.batch.capacity() == 0) {
    phase.batch.reserve(
        std::min(config_.restore_batch_records,
                 static_cast<size_t>(std::max<int64_t>(phase.high - phase.from, 1))));
  }
  phase.batch.push_back(std::move(change));
  return phase.batch.size() >= config_.restore_batch_records ? Flush(phase) : Status::OK();
}

Status StateRestorer::Decide(Phase& phase) {
  while (!phase.undecided.empty()) {
    const int64_t offset = phase.undecided.front().offset;
    const Seal seal = SealOf(phase.store, offset);
    if (seal == Seal::kUnknown) break;
    state::StoreChange change = std::move(phase.undecided.front().change);
    phase.undecided_bytes -= UndecidedBytes(change);
    phase.undecided.pop_front();
    if (seal == Seal::kUnsealed) {
      SkipUnsealed(phase.store, offset);
    } else if (auto s = AddSealed(phase, std::move(change)); !s.ok()) {
      return s;
    }
  }
  return EndIfDecided(phase);
}

Status StateRestorer::Flush(Phase& phase) {
  // The checkpoint says where the next restore starts: at the first record not yet written.
  const int64_t next_offset = !phase.undecided.empty() ? phase.undecided.front().offset
                              : phase.done             ? std::max(phase.next, phase.high)
                                                       : phase.next;
  changelog_positions_[phase.store] = next_offset;
  state::CheckpointEntries checkpoint{
      {CheckpointChangelogKey(phase.store), std::to_string(next_offset)}};
  const size_t changes = phase.batch.size();
  auto write =
      state_.PrepareRestore(phase.store, std::exchange(phase.batch, {}), std::move(checkpoint));
  if (!write.ok()) return write.status();
  writer_.Submit(lane_, changes, std::move(write).value());
  return writer_.Failure(lane_);  // an earlier write's, if any
}

}  // namespace cm::topology
