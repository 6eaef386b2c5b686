#pragma once

#include <librdkafka/rdkafka.h>

#include <string>

#include "state/status.h"

namespace cm::topology {

// What the engine does about a Kafka error.
enum class KafkaErrorAction {
  kIgnore,       // informational (end of partition)
  kRetry,        // transient: the client retries or the next poll succeeds
  kAbortCommit,  // the open commit cannot complete: drop it and reprocess from the last commit
  kFatal,        // this process cannot go on (fenced, unauthorised, misconfigured)
};

KafkaErrorAction ClassifyKafkaError(rd_kafka_resp_err_t err);
const char* KafkaErrorActionName(KafkaErrorAction action);

// A consumed message as a reader of assigned partitions sees it: a record, its partition's end,
// or a transient error to read past; an error the reader cannot read past (fatal, or one that
// would abort a commit) is Unavailable naming `topic`, the partition and the error.
enum class ConsumedMessage { kRecord, kEnd, kSkip };
state::Result<ConsumedMessage> ClassifyConsumed(const rd_kafka_message_t& m,
                                                const std::string& topic);

}  // namespace cm::topology
