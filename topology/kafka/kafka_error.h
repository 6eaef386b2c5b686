#pragma once

#include <librdkafka/rdkafka.h>

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

}  // namespace cm::topology
