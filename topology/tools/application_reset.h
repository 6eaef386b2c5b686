#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/status.h"
#include "topology/kafka/kafka_client.h"
#include "topology/kafka/topic_admin.h"
#include "topology/processor/topology.h"
#include "topology/runtime/reset_marker.h"

namespace cm::topology {

enum class PartitionRole { kInput, kRepartition, kChangelog, kCommits };
const char* PartitionRoleName(PartitionRole role);

// One partition a reset moves. Inputs: from the group's committed offset (-1: none) to the
// new start. Internal topics: reads began at the log start and now begin at the log end.
struct PartitionMove {
  std::string topic;
  int32_t partition = 0;
  PartitionRole role = PartitionRole::kInput;
  int64_t current = -1;
  int64_t target = 0;
};

struct ResetPlan {
  ResetMarker marker;
  std::vector<PartitionMove> moves;
  std::vector<std::string> directories;  // local state that will be deleted
  // What the reset does, one line per partition and directory (what --dry-run prints).
  std::string Describe() const;
};

struct ResetOptions {
  std::string bootstrap_servers;
  // The embedded broker answers offsets-for-times with -1: partitions are scanned instead.
  bool embedded_broker = false;
  std::string state_dir;                // <state-dir>/<app-id> is deleted
  std::optional<int64_t> from_ms;       // nullopt: every input from its beginning
  std::string from_text = "beginning";  // as the user wrote it, for the marker
  // An instance that announced itself within this window counts as running.
  std::chrono::milliseconds liveness{10'000};
};

// Kafka's application-reset tool for a stopped application: plans and applies a reset marker,
// group offsets and the deletion of local state. Also answers the offset questions a bounded
// run (backfill) asks.
class ApplicationReset {
 public:
  ApplicationReset(const Topology& topology, ResetOptions options, TopicAdmin& admin);
  ~ApplicationReset();
  ApplicationReset(const ApplicationReset&) = delete;
  ApplicationReset& operator=(const ApplicationReset&) = delete;

  // Conflict when the consumer group has members or,
  // where the broker cannot describe groups (the embedded one), when <app-id>-instances shows
  // an instance that announced itself within the liveness window without leaving.
  state::Status CheckStopped();
  // Reads offsets; changes nothing.
  state::Result<ResetPlan> Plan();
  // Writes the marker (creating <app-id>-resets if needed), commits the inputs' new offsets to
  // the consumer group, and deletes the local state directories.
  state::Status Apply(const ResetPlan& plan);

  // Per input partition: the first offset whose record timestamp is >= time_ms, or the end.
  state::Result<std::map<TopicPartition, int64_t>> InputOffsetsAt(int64_t time_ms);
  // Per input partition: the current end (high watermark).
  state::Result<std::map<TopicPartition, int64_t>> InputEndOffsets();

 private:
  struct Clients;
  state::Status Connect();
  state::Result<std::map<TopicPartition, int64_t>> InputOffsets(std::optional<int64_t> time_ms,
                                                                bool end);
  state::Result<int64_t> ScanForTime(const TopicPartition& tp, int64_t low, int64_t high,
                                     int64_t time_ms);

  const Topology& topology_;
  ResetOptions options_;
  TopicAdmin& admin_;
  std::unique_ptr<Clients> clients_;
  std::map<std::string, int32_t> partitions_;  // of every existing topic
};

}  // namespace cm::topology
