// ConsumerBatch over the embedded broker: every queued message at most a capacity at a time, in
// order, and a wait that ends with the first message rather than with the timeout.
#include "topology/kafka/consumer_batch.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "in_process.h"
#include "kafka_clients.h"

namespace cm {
namespace {

using Clock = std::chrono::steady_clock;

class ConsumerBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = testing::TestBroker::Start({{"topic", 1}});
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
    producer_ = testing::NewProducer(broker_->bootstrap_servers());
    consumer_ = testing::NewClient(RD_KAFKA_CONSUMER, broker_->bootstrap_servers(),
                                   {{"group.id", "batch-test"}, {"enable.partition.eof", "true"}});
    ASSERT_EQ(rd_kafka_poll_set_consumer(consumer_.get()), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  void Assign() {
    topology::PartitionList list(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(list.get(), "topic", 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ASSERT_EQ(rd_kafka_assign(consumer_.get(), list.get()), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  void ProduceRecords(int n) {
    for (int i = 0; i < n; ++i)
      testing::Produce(producer_.get(), "topic", "k" + std::to_string(i), "v" + std::to_string(i));
    ASSERT_EQ(rd_kafka_flush(producer_.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  // Waits until the consumer's queue holds at least `n` events.
  void WaitQueued(size_t n) {
    rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(consumer_.get());
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (rd_kafka_queue_length(queue) < n && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_GE(rd_kafka_queue_length(queue), n);
    rd_kafka_queue_destroy(queue);
  }

  std::unique_ptr<testing::TestBroker> broker_;
  testing::Kafka producer_;
  testing::Kafka consumer_;
};

TEST_F(ConsumerBatchTest, TakesTheQueuedMessagesInOrderAtMostTheCapacityAtATime) {
  ProduceRecords(100);
  Assign();         // after producing: one end-of-partition event, after the last record
  WaitQueued(100);  // 100 records and the end of the partition
  topology::ConsumerBatch batch(consumer_.get(), 32);
  std::vector<size_t> sizes;
  std::vector<int64_t> offsets;
  bool end = false;
  while (!end) {
    batch.Poll(std::chrono::seconds(10));
    ASSERT_GT(batch.size(), 0u) << "the queued messages were not taken";
    sizes.push_back(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        end = true;
      } else {
        ASSERT_EQ(batch[i].err, RD_KAFKA_RESP_ERR_NO_ERROR);
        offsets.push_back(batch[i].offset);
        EXPECT_EQ(std::string(static_cast<const char*>(batch[i].payload), batch[i].len),
                  "v" + std::to_string(batch[i].offset));
      }
    }
  }
  // Full batches while at least 32 were queued, then the rest (the end event may come apart).
  ASSERT_GE(sizes.size(), 4u);
  EXPECT_EQ(std::vector<size_t>(sizes.begin(), sizes.begin() + 3),
            (std::vector<size_t>{32, 32, 32}));
  for (size_t size : sizes) EXPECT_LE(size, 32u);
  ASSERT_EQ(offsets.size(), 100u);
  for (size_t i = 0; i < offsets.size(); ++i) EXPECT_EQ(offsets[i], static_cast<int64_t>(i));
}

TEST_F(ConsumerBatchTest, AWaitEndsWithTheFirstMessageNotTheTimeout) {
  Assign();
  topology::ConsumerBatch batch(consumer_.get(), 32);
  // The end of the empty partition first.
  batch.Poll(std::chrono::seconds(30));
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].err, RD_KAFKA_RESP_ERR__PARTITION_EOF);
  batch.Poll(std::chrono::milliseconds(100));
  EXPECT_EQ(batch.size(), 0u) << "nothing was produced";

  std::thread produce([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ProduceRecords(1);
  });
  const auto start = Clock::now();
  batch.Poll(std::chrono::seconds(60));
  const auto waited = Clock::now() - start;
  produce.join();
  ASSERT_GE(batch.size(), 1u);
  EXPECT_EQ(batch[0].offset, 0);
  // librdkafka's own batch call would have waited the whole minute for 32 messages.
  EXPECT_LT(waited, std::chrono::seconds(30));
}

}  // namespace
}  // namespace cm
