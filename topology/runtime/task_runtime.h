#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "topology/runtime/outbox.h"
#include "topology/runtime/record_collector.h"
#include "topology/runtime/state_restorer.h"
#include "topology/runtime/stream_task.h"

namespace cm::topology {

// One task of a stream thread and the positions its commits are built from. The TaskManager
// owns it; the changelog reader, record collector and committer work on it by reference.
struct TaskRuntime {
  TaskId id;
  std::unique_ptr<RecordCollector> collector;  // outlives `task`, which sends through it
  std::unique_ptr<StreamTask> task;
  std::unique_ptr<StateRestorer> restorer;  // until restored
  bool running = false;
  std::vector<std::string> topics;           // source topics; the first drives group assignment
  std::map<std::string, int64_t> positions;  // next offset, as processed
  std::map<std::string, int64_t> committed_positions;  // next offset, as last sealed
  std::map<std::string, int64_t> changelog_positions;  // next offset per logged store
  // The unsealed ranges below changelog_positions, which seals list; unknown after a restore
  // from seals written before they listed them.
  std::optional<ChangelogGaps> changelog_gaps;
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

using TaskMap = std::map<TaskId, TaskRuntime>;

}  // namespace cm::topology
