// Parts of a stream thread against the embedded broker, where their failure paths are reached
// directly: learning an output's partition (RecordCollectorImpl::PartitionFor) and reading one
// partition to its end (PartitionReader, used by restores and the republish scan).
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <vector>

#include "in_process.h"
#include "kafka_clients.h"
#include "topology/kafka/kafka_client.h"
#include "topology/kafka/partitioner.h"
#include "topology/processor/topology.h"
#include "topology/runtime/changelog_reader.h"
#include "topology/runtime/record_collector_impl.h"
#include "topology/runtime/stream_producer.h"
#include "topology/runtime/thread_failure.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using topology::PartitionReader;

class StreamThreadPartsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = testing::TestBroker::Start({{"parts-in", 3}, {"parts-out", 3}});
    ASSERT_TRUE(broker.ok());
    broker_ = std::move(broker).value();
    config_ = testing::EmbeddedStreamsConfig("it-parts", broker_->bootstrap_servers(), "unused");
    config_.guarantee = topology::ProcessingGuarantee::kAtLeastOnce;
  }

  std::unique_ptr<testing::TestBroker> broker_;
  topology::StreamsConfig config_;
};

TEST_F(StreamThreadPartsTest, AnOutputTopicThatDoesNotExistFailsTheThreadAlsoInsideACallback) {
  topology::TopologyBuilder builder;
  builder.AddSource("in", {"parts-in"}).AddSink("out", "parts-out", {"in"});
  auto topology = builder.Build("it-parts");
  ASSERT_TRUE(topology.ok());
  topology::ThreadFailure failure(0);
  topology::StreamProducer producer(config_, "it-parts-producer", failure);
  topology::RecordCollectorImpl collector(*topology, config_, producer, failure, nullptr);

  EXPECT_EQ(collector.PartitionFor("parts-out", "k1"), topology::PartitionForKey("k1", 3));

  // Outside librdkafka's callbacks the thread fails at once.
  EXPECT_THROW((void)collector.PartitionFor("parts-missing", "k1"), topology::StreamThreadFailure);

  // Inside a rebalance callback the error must wait for the poll to return, and the caller
  // must learn that there is no partition instead of going on with one read from nowhere.
  failure.set_in_callback(true);
  std::optional<int32_t> partition = collector.PartitionFor("parts-missing", "k1");
  failure.set_in_callback(false);
  EXPECT_EQ(partition, std::nullopt);
  ASSERT_TRUE(failure.deferred());
  try {
    failure.RaiseDeferred();
    ADD_FAILURE() << "the deferred failure was not raised";
  } catch (const topology::StreamThreadFailure& e) {
    EXPECT_STREQ(e.what(), "output topic parts-missing does not exist");
  }
}

TEST_F(StreamThreadPartsTest, PartitionReaderReadsOnePartitionFromAnOffsetToItsEnd) {
  auto producer = testing::NewProducer(broker_->bootstrap_servers());
  const int32_t partition = topology::PartitionForKey("k", 3);
  for (int i = 0; i < 30; ++i) {
    // Other keys land in other partitions too: the reader must see only its own.
    testing::Produce(producer.get(), "parts-in", i % 3 == 0 ? "other-" + std::to_string(i) : "k",
                     std::to_string(i));
  }
  ASSERT_EQ(rd_kafka_flush(producer.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  auto consumer = topology::ChangelogReader::NewRestoreConsumer(config_, "it-parts-reader");
  int64_t low = 0, high = 0;
  ASSERT_TRUE(topology::QueryWatermarks(consumer.get(), "parts-in", partition, low, high).ok());
  ASSERT_GE(high, 20);

  std::vector<int64_t> offsets;
  PartitionReader reader(consumer.get(), "parts-in", partition, 2, high);
  auto done = reader.Read(std::chrono::steady_clock::now() + 30s,
                          [&](const rd_kafka_message_t& m) -> state::Result<bool> {
                            EXPECT_EQ(m.partition, partition);
                            offsets.push_back(m.offset);
                            return true;
                          });
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_TRUE(*done);
  std::vector<int64_t> expected;
  for (int64_t o = 2; o < high; ++o) expected.push_back(o);
  EXPECT_EQ(offsets, expected);
  EXPECT_EQ(reader.next_offset(), high);
}

TEST_F(StreamThreadPartsTest, PartitionReaderStopsAtItsDeadlineAndGoesOnLater) {
  auto producer = testing::NewProducer(broker_->bootstrap_servers());
  for (int i = 0; i < 20; ++i) testing::Produce(producer.get(), "parts-in", "k", std::to_string(i));
  ASSERT_EQ(rd_kafka_flush(producer.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  const int32_t partition = topology::PartitionForKey("k", 3);
  auto consumer = topology::ChangelogReader::NewRestoreConsumer(config_, "it-parts-reader");
  int64_t low = 0, high = 0;
  ASSERT_TRUE(topology::QueryWatermarks(consumer.get(), "parts-in", partition, low, high).ok());
  ASSERT_EQ(high, 20);

  // With the broker gone the end cannot be reached: the read gives up at its deadline (the
  // republish scan then fails its task) instead of waiting forever.
  ASSERT_TRUE(broker_->SetAvailable(false).ok());
  size_t seen = 0;
  auto count = [&](const rd_kafka_message_t&) -> state::Result<bool> {
    ++seen;
    return true;
  };
  PartitionReader reader(consumer.get(), "parts-in", partition, 0, high);
  auto first = reader.Read(std::chrono::steady_clock::now() + 500ms, count);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(*first);
  EXPECT_EQ(seen, 0u);

  ASSERT_TRUE(broker_->SetAvailable(true).ok());
  auto second = reader.Read(std::chrono::steady_clock::now() + 30s, count);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(*second);
  EXPECT_EQ(seen, 20u);
}

}  // namespace
}  // namespace cm
