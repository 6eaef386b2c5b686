#include "topology/runtime/state_restorer.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "topology/common/log.h"
#include "topology/kafka/kafka_error.h"
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

Status StateRestorer::Prepare() {
  started_ = std::chrono::steady_clock::now();
  const auto& sub = topology_.subtopologies().at(static_cast<size_t>(task_.subtopology));
  const std::string& app = topology_.application_id();
  phases_.push_back(
      {Topology::CommitTopic(app, sub.id), "", ReadCheckpoint(state_, kCheckpointCommits)});
  for (const auto& store : sub.stores) {
    if (!store.logged) continue;
    int64_t from = ReadCheckpoint(state_, CheckpointChangelogKey(store.name));
    phases_.push_back({Topology::ChangelogTopic(app, store.name), store.name, from});
    changelog_positions_[store.name] = from;
  }
  for (const auto& topic : sub.source_topics) {
    if (auto v = state_.GetCheckpoint(CheckpointInputKey(topic))) inputs_[topic] = std::stoll(*v);
  }
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
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
        consumer_, phase.topic.c_str(), task_.partition, &phase.low, &phase.high, 10000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return Status::Unavailable("cannot read offsets of " + phase.topic + "[" +
                                 std::to_string(task_.partition) + "]: " + rd_kafka_err2str(err));
    }
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

Result<bool> StateRestorer::Step(std::chrono::milliseconds budget) {
  if (!prepared_) {
    if (auto s = Prepare(); !s.ok()) return s;
  }
  auto deadline = std::chrono::steady_clock::now() + budget;
  while (phase_ < phases_.size()) {
    Phase& phase = phases_[phase_];
    if (!assigned_) {
      next_offset_ = phase.from;
      if (phase.from < phase.high) {
        rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, phase.topic.c_str(), task_.partition)->offset =
            phase.from;
        rd_kafka_resp_err_t err = rd_kafka_assign(consumer_, list);
        rd_kafka_topic_partition_list_destroy(list);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          return Status::Unavailable(std::string("cannot assign restore consumer: ") +
                                     rd_kafka_err2str(err));
        }
      }
      assigned_ = true;
    }
    bool done = next_offset_ >= phase.high;
    while (!done) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_, 100);
      if (m == nullptr) continue;
      if (m->rkt == nullptr || m->partition != task_.partition ||
          phase.topic != rd_kafka_topic_name(m->rkt)) {
        rd_kafka_message_destroy(m);  // left over from the previous phase's partition
        continue;
      }
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        done = true;  // under read_committed this is the last stable offset
      } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        KafkaErrorAction action = ClassifyKafkaError(m->err);
        std::string what = rd_kafka_message_errstr(m);
        rd_kafka_message_destroy(m);
        if (action == KafkaErrorAction::kFatal || action == KafkaErrorAction::kAbortCommit) {
          return Status::Unavailable("restore of " + phase.topic + " failed: " + what);
        }
        continue;
      } else {
        ++restored_;
        if (phase.store.empty()) {
          std::string_view value(static_cast<const char*>(m->payload), m->len);
          std::string_view type = "seal";
          rd_kafka_headers_t* headers = nullptr;
          const void* type_value = nullptr;
          size_t type_size = 0;
          if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR &&
              rd_kafka_header_get_last(headers, kCommitRecordTypeHeader, &type_value, &type_size) ==
                  RD_KAFKA_RESP_ERR_NO_ERROR) {
            type = std::string_view(static_cast<const char*>(type_value), type_size);
          }
          if (auto s = ApplyCommitRecord(type, value, m->offset); !s.ok()) {
            rd_kafka_message_destroy(m);
            return s;
          }
          commit_position_ = m->offset + 1;
        } else if (Sealed(phase.store, m->offset)) {
          state::StoreChange change;
          change.key.assign(static_cast<const char*>(m->key), m->key_len);
          if (m->payload != nullptr)
            change.value.emplace(static_cast<const char*>(m->payload), m->len);
          batch_.push_back(std::move(change));
        } else {
          ++skipped_;
        }
        next_offset_ = m->offset + 1;
        done = next_offset_ >= phase.high;
        if (!phase.store.empty() && batch_.size() >= config_.restore_batch_records) {
          if (auto s = Flush(phase, next_offset_); !s.ok()) {
            rd_kafka_message_destroy(m);
            return s;
          }
        }
      }
      rd_kafka_message_destroy(m);
    }
    if (!phase.store.empty()) {
      if (auto s = Flush(phase, std::max(next_offset_, phase.high)); !s.ok()) return s;
    }
    Log(LogLevel::kInfo, "restore_phase_done",
        {{"task", task_.ToString()},
         {"topic", phase.topic},
         {"from", phase.from},
         {"to", phase.high},
         {"records", phase.high - phase.from}});
    if (rd_kafka_resp_err_t err = rd_kafka_assign(consumer_, nullptr)) {
      // The next phase's assign replaces the assignment; the restore itself is complete.
      Log(LogLevel::kWarn, "restore_unassign_failed",
          {{"task", task_.ToString()}, {"topic", phase.topic}, {"error", rd_kafka_err2str(err)}});
    }
    assigned_ = false;
    ++phase_;
  }
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
  if (auto s = state_.Commit(checkpoint); !s.ok()) return s;  // nothing is pending: checkpoint only
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started_)
                .count();
  Log(LogLevel::kInfo, "restore_done",
      {{"task", task_.ToString()},
       {"records", restored_},
       {"skippedUnsealed", skipped_},
       {"ms", ms}});
  return true;
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

Status StateRestorer::Flush(const Phase& phase, int64_t next_offset) {
  changelog_positions_[phase.store] = next_offset;
  state::CheckpointEntries checkpoint{
      {CheckpointChangelogKey(phase.store), std::to_string(next_offset)}};
  auto s = state_.ApplyRestored(phase.store, batch_, checkpoint);
  batch_.clear();
  return s;
}

}  // namespace cm::topology
