#pragma once

// The contract between `cmstream replay` (topology/tools/application_reset.h), which writes a
// reset marker, and the runtime, which honours it when it restores and processes.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "state/status.h"

typedef struct rd_kafka_s rd_kafka_t;

namespace cm::topology {

// What `cmstream replay` leaves in <app-id>-resets (one partition) for the engine to honour.
// Kafka's application-reset tool deletes internal topics; the embedded broker cannot delete
// topics or records, so a reset instead records, per partition, the offset from which restores
// (changelogs, commit logs) and reads (repartition topics) now begin, and where each input
// partition resumes. A task whose local checkpoint names an older reset discards its state.
struct ResetMarker {
  std::string id;  // unique per reset; tasks checkpoint the id their state reflects
  int64_t created_ms = 0;
  std::string from;  // "beginning" or the time asked for, for people reading the topic
  std::map<std::string, std::map<int32_t, int64_t>> offsets;  // topic -> partition -> offset
  // Per input partition: the position the application had reached before the reset. Outputs of
  // the records below it were published then, so the replay does not publish them again (a
  // quota alert, a DLQ record): replaying never re-sends what the application already sent.
  std::map<std::string, std::map<int32_t, int64_t>> published;

  std::optional<int64_t> Offset(const std::string& topic, int32_t partition) const;
  std::optional<int64_t> Published(const std::string& topic, int32_t partition) const;
  std::string Encode() const;
  static state::Result<ResetMarker> Decode(std::string_view json);
};

// The latest marker in `topic` (nullopt when the application was never reset), read with
// `consumer`, which must not be subscribed; its assignment is cleared afterwards.
state::Result<std::optional<ResetMarker>> ReadLatestReset(rd_kafka_t* consumer,
                                                          const std::string& topic);

}  // namespace cm::topology
