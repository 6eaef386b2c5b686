#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <string>

#include "topology/kafka/kafka_error.h"

namespace cm::topology {
namespace {

void ExpectAction(rd_kafka_resp_err_t err, KafkaErrorAction expected) {
  KafkaErrorAction got = ClassifyKafkaError(err);
  EXPECT_EQ(got, expected) << rd_kafka_err2name(err) << " is " << KafkaErrorActionName(got)
                           << ", expected " << KafkaErrorActionName(expected);
}

TEST(TopologyKafkaErrorTest, FencingAndAuthorizationAreFatal) {
  for (auto err :
       {RD_KAFKA_RESP_ERR__FENCED, RD_KAFKA_RESP_ERR_PRODUCER_FENCED,
        RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH, RD_KAFKA_RESP_ERR__FATAL,
        RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
        RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR__AUTHENTICATION}) {
    ExpectAction(err, KafkaErrorAction::kFatal);
  }
}

TEST(TopologyKafkaErrorTest, TransportAndTimeoutsAreRetried) {
  for (auto err :
       {RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
        RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION, RD_KAFKA_RESP_ERR__RESOLVE,
        RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
        RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
        RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS}) {
    ExpectAction(err, KafkaErrorAction::kRetry);
  }
}

TEST(TopologyKafkaErrorTest, PartitionEofIsIgnored) {
  ExpectAction(RD_KAFKA_RESP_ERR__PARTITION_EOF, KafkaErrorAction::kIgnore);
  ExpectAction(RD_KAFKA_RESP_ERR_NO_ERROR, KafkaErrorAction::kIgnore);
}

TEST(TopologyKafkaErrorTest, MessageTimeoutAbortsTheCommit) {
  ExpectAction(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, KafkaErrorAction::kAbortCommit);
  ExpectAction(RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST, KafkaErrorAction::kAbortCommit);
  ExpectAction(RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION, KafkaErrorAction::kAbortCommit);
  ExpectAction(RD_KAFKA_RESP_ERR_INVALID_TXN_STATE, KafkaErrorAction::kAbortCommit);
}

TEST(TopologyKafkaErrorTest, UnknownErrorsAbortTheCommit) {
  // Anything unlisted falls back to the always-safe action.
  ExpectAction(RD_KAFKA_RESP_ERR_INVALID_MSG, KafkaErrorAction::kAbortCommit);
  ExpectAction(static_cast<rd_kafka_resp_err_t>(99999), KafkaErrorAction::kAbortCommit);
}

TEST(TopologyKafkaErrorTest, ActionNames) {
  EXPECT_STREQ(KafkaErrorActionName(KafkaErrorAction::kIgnore), "ignore");
  EXPECT_STREQ(KafkaErrorActionName(KafkaErrorAction::kRetry), "retry");
  EXPECT_STREQ(KafkaErrorActionName(KafkaErrorAction::kAbortCommit), "abort-commit");
  EXPECT_STREQ(KafkaErrorActionName(KafkaErrorAction::kFatal), "fatal");
}

// What a partition reader (restores, replays, the changelog reader) does with a consumed
// message: a record, the end, an error to read past, or a failure naming the partition.
TEST(TopologyKafkaErrorTest, ConsumedMessagesAreRecordsEndsSkipsOrFailuresNamingThePartition) {
  rd_kafka_message_t m{};
  m.partition = 3;
  auto kind = [&](rd_kafka_resp_err_t err) {
    m.err = err;
    return ClassifyConsumed(m, "orders-changelog");
  };
  EXPECT_EQ(kind(RD_KAFKA_RESP_ERR_NO_ERROR).value(), ConsumedMessage::kRecord);
  EXPECT_EQ(kind(RD_KAFKA_RESP_ERR__PARTITION_EOF).value(), ConsumedMessage::kEnd);
  EXPECT_EQ(kind(RD_KAFKA_RESP_ERR__TRANSPORT).value(), ConsumedMessage::kSkip);
  for (auto err :
       {RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED}) {
    auto failed = kind(err);
    ASSERT_FALSE(failed.ok()) << rd_kafka_err2str(err);
    EXPECT_EQ(failed.status().code(), state::Status::Code::kUnavailable);
    EXPECT_NE(failed.status().message().find("orders-changelog[3]"), std::string::npos)
        << failed.status().message();
    EXPECT_NE(failed.status().message().find(rd_kafka_err2str(err)), std::string::npos)
        << failed.status().message();
  }
}

}  // namespace
}  // namespace cm::topology
