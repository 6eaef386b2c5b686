#include "topology/kafka/kafka_error.h"

namespace cm::topology {

// Every case the engine knows is listed; anything else aborts the commit, which is always safe
// because the commit protocol reprocesses from the last sealed commit.
KafkaErrorAction ClassifyKafkaError(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
    case RD_KAFKA_RESP_ERR__NO_OFFSET:
      return KafkaErrorAction::kIgnore;

    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__RESOLVE:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
    case RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT:
      return KafkaErrorAction::kRetry;

    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_INVALID_TXN_STATE:
    case RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
      return KafkaErrorAction::kAbortCommit;

    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
      return KafkaErrorAction::kFatal;

    default:
      return KafkaErrorAction::kAbortCommit;
  }
}

const char* KafkaErrorActionName(KafkaErrorAction action) {
  switch (action) {
    case KafkaErrorAction::kIgnore:
      return "ignore";
    case KafkaErrorAction::kRetry:
      return "retry";
    case KafkaErrorAction::kAbortCommit:
      return "abort-commit";
    case KafkaErrorAction::kFatal:
      return "fatal";
  }
  return "unknown";
}

state::Result<ConsumedMessage> ClassifyConsumed(const rd_kafka_message_t& m,
                                                const std::string& topic) {
  if (m.err == RD_KAFKA_RESP_ERR_NO_ERROR) return ConsumedMessage::kRecord;
  if (m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return ConsumedMessage::kEnd;
  KafkaErrorAction action = ClassifyKafkaError(m.err);
  if (action != KafkaErrorAction::kFatal && action != KafkaErrorAction::kAbortCommit)
    return ConsumedMessage::kSkip;
  return state::Status::Unavailable("reading " + topic + "[" + std::to_string(m.partition) +
                                    "] failed: " + rd_kafka_message_errstr(&m));
}

}  // namespace cm::topology
