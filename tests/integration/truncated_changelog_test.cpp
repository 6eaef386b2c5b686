// The embedded broker keeps about 5 MiB per partition. When a changelog has lost records that
// the local state needs, the task must refuse to restore a partial store, loudly; when an
// input partition lost records before they were processed, the loss is counted and shown.
#include <gtest/gtest.h>

#include <filesystem>

#include "child_process.h"
#include "in_process.h"
#include "kafka_clients.h"

namespace cm {
namespace {

using namespace std::chrono_literals;

// Stores a 256 KiB value per record, so a few dozen records overflow a changelog partition.
class BigValueWriter final : public topology::Processor {
 public:
  void Init(topology::ProcessorContext& context) override {
    store_ = &context.GetKeyValueStore("big");
  }
  void Process(const topology::Record& record) override {
    store_->Put(record.key, std::string(256 * 1024, 'x'));
  }

 private:
  state::KeyValueStore* store_ = nullptr;
};

TEST(TruncatedChangelogTest, RestoreRefusesAChangelogThatLostRecords) {
  auto dir = std::filesystem::temp_directory_path() / ("cm-it-trunc-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto broker = testing::TestBroker::Start({{"big-input", 1}});
  ASSERT_TRUE(broker.ok());
  topology::TopologyBuilder builder;
  state::StoreSpec spec;
  spec.name = "big";
  builder.AddSource("in", {"big-input"})
      .AddProcessor("writer", [] { return std::make_unique<BigValueWriter>(); }, {"in"})
      .AddStateStore(spec, {"writer"});
  auto topology = builder.Build("it-trunc");
  ASSERT_TRUE(topology.ok());
  const testing::InstanceOptions options{.state_dir = (dir / "state").string()};

  auto producer = testing::NewProducer((*broker)->bootstrap_servers());
  {
    testing::InProcessInstance instance(**broker, *topology, options);
    auto started = instance.Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
    topology::KafkaStreams& streams = instance.streams();
    for (int i = 0; i < 40; ++i)
      testing::Produce(producer.get(), "big-input", "k" + std::to_string(i), "x");
    rd_kafka_flush(producer.get(), 10000);
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          uint64_t n = 0;
          for (const auto& t : streams.Threads()) n += t.processed;
          return n == 40;
        },
        30s));
    streams.Stop();  // 40 x 256 KiB went to the changelog: more than the broker keeps
  }
  auto consumer = testing::NewClient(RD_KAFKA_CONSUMER, (*broker)->bootstrap_servers(),
                                     {{"group.id", "probe"}});
  int64_t low = 0, high = 0;
  ASSERT_EQ(rd_kafka_query_watermark_offsets(consumer.get(), "it-trunc-big-changelog", 0, &low,
                                             &high, 10000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_GT(low, 0) << "the broker kept the whole changelog; the test needs it truncated";

  std::filesystem::remove_all(dir / "state");  // a restore from offset 0 is now impossible
  testing::InProcessInstance instance(**broker, *topology, options);
  (void)instance.Start();  // fails: what the task says is below
  topology::KafkaStreams& streams = instance.streams();
  ASSERT_TRUE(testing::WaitFor([&] { return !streams.Failure().empty(); }, 30s))
      << "the task restored a partial store instead of failing";
  EXPECT_NE(streams.Failure().find("dropped records this state depends on"), std::string::npos)
      << streams.Failure();
  EXPECT_FALSE(streams.Ready());
  streams.Stop();
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

class Discard final : public topology::Processor {
 public:
  void Init(topology::ProcessorContext&) override {}
  void Process(const topology::Record&) override {}
};

// Issue 14, case 2: 12 of 20 acknowledged events were never counted, and the only trace was a
// librdkafka "Offset out of range ... reset to BEGINNING" warning.
TEST(TruncatedChangelogTest, InputRecordsDeletedBeforeProcessingAreCountedAsLost) {
  auto dir = testing::FreshTestDirectory("cm-it-lost");
  auto broker = testing::TestBroker::Start({{"lossy-input", 1}});
  ASSERT_TRUE(broker.ok());
  topology::TopologyBuilder builder;
  builder.AddSource("in", {"lossy-input"})
      .AddProcessor("discard", [] { return std::make_unique<Discard>(); }, {"in"});
  auto topology = builder.Build("it-lost");
  ASSERT_TRUE(topology.ok());
  const testing::InstanceOptions options{.state_dir = (dir / "state").string()};
  auto processed = [](const topology::KafkaStreams& streams) {
    uint64_t n = 0;
    for (const auto& t : streams.Threads()) n += t.processed;
    return n;
  };
  auto producer = testing::NewProducer((*broker)->bootstrap_servers());
  {
    testing::InProcessInstance instance(**broker, *topology, options);
    auto started = instance.Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
    testing::Produce(producer.get(), "lossy-input", "k", "small");
    rd_kafka_flush(producer.get(), 10000);
    ASSERT_TRUE(testing::WaitFor([&] { return processed(instance.streams()) == 1; }, 30s));
  }  // a clean stop commits position 1
  // While no instance runs, 30 x 256 KiB arrive: the broker keeps 5 MiB and drops the oldest.
  for (int i = 0; i < 30; ++i)
    testing::Produce(producer.get(), "lossy-input", "k" + std::to_string(i),
                     std::string(256 * 1024, 'x'));
  rd_kafka_flush(producer.get(), 10000);
  auto consumer = testing::NewClient(RD_KAFKA_CONSUMER, (*broker)->bootstrap_servers(),
                                     {{"group.id", "probe"}});
  int64_t low = 0, high = 0;
  ASSERT_EQ(rd_kafka_query_watermark_offsets(consumer.get(), "lossy-input", 0, &low, &high, 10000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_GT(low, 1) << "the broker kept the records; the test needs them deleted";
  const int64_t lost = low - 1;  // offsets 1 .. low-1 were never processed

  testing::InProcessInstance instance(**broker, *topology, options);
  auto started = instance.Start();
  ASSERT_TRUE(started.ok()) << started.ToString();
  topology::KafkaStreams& streams = instance.streams();
  ASSERT_TRUE(testing::WaitFor(
      [&] { return processed(streams) == static_cast<uint64_t>(high - low); }, 30s))
      << processed(streams) << " of " << high - low;
  ASSERT_TRUE(testing::WaitFor([&] { return !streams.ReadyReport()["recordsLost"].empty(); }, 10s));
  auto report = streams.ReadyReport()["recordsLost"];
  ASSERT_EQ(report.size(), 1u) << report.dump();
  EXPECT_EQ(report[0]["topic"], "lossy-input");
  EXPECT_EQ(report[0]["partition"], 0);
  EXPECT_EQ(report[0]["records"], lost);
  EXPECT_NE(streams.RenderMetrics().find("cmstream_records_lost_total{topic=\"lossy-input\","
                                         "partition=\"0\"} " +
                                         std::to_string(lost)),
            std::string::npos)
      << streams.RenderMetrics();
  instance.Stop();
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cm
