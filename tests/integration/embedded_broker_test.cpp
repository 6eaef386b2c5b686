// What the embedded broker holds (issue 14): it keeps EmbeddedBroker::kPartitionBytes a
// partition and drops the oldest batches beyond that, so --max-event-bytes defaults to 4 KiB on
// it. These tests produce maximal usage events to one partition with nothing consuming, each in
// its own batch as an HTTP append sends them (linger 0), and read the partition's start offset.
#include <gtest/gtest.h>

#include "in_process.h"
#include "kafka_clients.h"
#include "processors/cloudmatrix/command_line.h"

namespace cm {
namespace {

// The partition's low and high watermarks after `count` events of `event_bytes` whose key is
// as long as an id may be.
std::pair<int64_t, int64_t> ProduceMaximalEvents(const std::string& topic, size_t event_bytes,
                                                 int count) {
  auto broker = testing::TestBroker::Start({{topic, 1}});
  EXPECT_TRUE(broker.ok());
  if (!broker.ok()) return {-1, -1};
  const std::string key(usage::UsageLimits{}.max_id_bytes, 'o');
  const std::string value(event_bytes, 'x');
  auto producer = testing::NewClient(RD_KAFKA_PRODUCER, (*broker)->bootstrap_servers(),
                                     {{"linger.ms", "0"},
                                      {"batch.num.messages", "1"},  // the most overhead
                                      {"enable.idempotence", "true"}});
  for (int i = 0; i < count; ++i) testing::Produce(producer.get(), topic, key, value);
  rd_kafka_flush(producer.get(), 30000);
  auto probe = testing::NewClient(RD_KAFKA_CONSUMER, (*broker)->bootstrap_servers(),
                                  {{"group.id", "probe"}});
  int64_t low = -1, high = -1;
  EXPECT_EQ(rd_kafka_query_watermark_offsets(probe.get(), topic.c_str(), 0, &low, &high, 10000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  return {low, high};
}

TEST(EmbeddedBrokerTest, APartitionHoldsAThousandEventsOfTheEmbeddedDefaultSize) {
  auto limits = cloudmatrix::ParseLimitFlags({}, 1 << 20, /*embedded_broker=*/true);
  ASSERT_TRUE(limits.ok()) << limits.status().ToString();
  auto [low, high] = ProduceMaximalEvents("events-4k", limits->max_event_bytes, 1000);
  EXPECT_EQ(high, 1000);
  EXPECT_EQ(low, 0) << "the broker dropped " << low << " of 1,000 events of "
                    << limits->max_event_bytes << " bytes";
}

// Why the default is smaller there than on a Kafka cluster: of 64 KiB events it keeps ~80.
TEST(EmbeddedBrokerTest, APartitionDropsTheOldestEventsOfTheClusterDefaultSize) {
  auto limits = cloudmatrix::ParseLimitFlags({}, 1 << 20, /*embedded_broker=*/false);
  ASSERT_TRUE(limits.ok()) << limits.status().ToString();
  auto [low, high] = ProduceMaximalEvents("events-64k", limits->max_event_bytes, 200);
  EXPECT_EQ(high, 200);
  const int64_t kept = high - low;
  EXPECT_GE(kept, 70);
  EXPECT_LE(kept, 80) << "the broker holds more than EmbeddedBroker::kPartitionBytes";
}

}  // namespace
}  // namespace cm
