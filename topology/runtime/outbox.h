#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "state/status.h"
#include "topology/processor/record.h"

namespace cm::topology {

// Kafka headers cmstream puts on the records of a task's commit-log partition and on outputs.
inline constexpr const char* kCommitRecordTypeHeader = "cm-type";  // "seal", "outbox", "published"
inline constexpr const char* kOutputIdHeader = "cm-out";  // "<writer>/<seq>/<task>/<index>"
// On a record a replay sends to an internal topic for an input record whose outputs were sent
// before the reset: the downstream task drops the external outputs it causes too.
inline constexpr const char* kReplayedHeader = "cm-replayed";
// On a source record re-produced to the partition owning its key: "<partition>/<offset>" where
// it first landed.
inline constexpr const char* kReroutedHeader = "cm-rerouted-from";

// One record a task sends to a sink topic (or the DLQ).
struct PendingOutput {
  std::string topic;
  Record record;
};

// The kOutputIdHeader prefix of the outputs one task sealed in commit `seq` of thread
// incarnation `writer`. A thread commit seals all its tasks with one seq, so without the task
// two tasks' outputs of one commit had the same ids, and a republish scan counted one task's
// delivered outputs as the other's (the usage failover e2e lost misrouted records that way).
std::string OutputIdPrefix(std::string_view writer, uint64_t seq, std::string_view task);

// Packs outputs into commit-log records of at most about max_bytes each (a record larger than
// that gets one of its own). The framing is length-prefixed binary: outputs are opaque bytes.
std::vector<std::string> EncodeOutbox(const std::vector<PendingOutput>& outputs, size_t max_bytes);
state::Status DecodeOutbox(std::string_view encoded, std::vector<PendingOutput>& out);

}  // namespace cm::topology
