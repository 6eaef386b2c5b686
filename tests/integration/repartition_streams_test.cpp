// Re-keying through an internal repartition topic into a second sub-topology, over the broker.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "child_process.h"
#include "embedded_streams.h"
#include "kafka_clients.h"
#include "topology/embedded_broker.h"
#include "topology/kafka_streams.h"
#include "topology/topic_admin.h"

namespace cm {
namespace {

using namespace std::chrono_literals;

// Re-keys each record by its value ("which colour did this user pick").
class ByValue final : public topology::Processor {
 public:
  void Init(topology::ProcessorContext& context) override { context_ = &context; }
  void Process(const topology::Record& record) override {
    topology::Record out = record;
    out.key = record.value;
    out.value = record.key;
    context_->Forward(out);
  }

 private:
  topology::ProcessorContext* context_ = nullptr;
};

// Counts per key and emits the running count.
class Count final : public topology::Processor {
 public:
  void Init(topology::ProcessorContext& context) override {
    context_ = &context;
    store_ = &context.GetKeyValueStore("per-colour");
  }
  void Process(const topology::Record& record) override {
    long n = 0;
    if (auto v = store_->Get(record.key)) n = std::stol(*v);
    store_->Put(record.key, std::to_string(++n));
    topology::Record out;
    out.key = record.key;
    out.value = std::to_string(n);
    out.timestamp_ms = record.timestamp_ms;
    context_->Forward(out);
  }

 private:
  topology::ProcessorContext* context_ = nullptr;
  state::KeyValueStore* store_ = nullptr;
};

TEST(RepartitionStreamsTest, RecordsReKeyedIntoASecondSubTopologyAreCountedByTheirNewKey) {
  auto dir =
      std::filesystem::temp_directory_path() / ("cm-it-repart-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto broker = topology::EmbeddedBroker::Start();
  ASSERT_TRUE(broker.ok());
  ASSERT_TRUE((*broker)->CreateTopic("picks", 4).ok());
  auto admin = topology::NewEmbeddedTopicAdmin(**broker);
  topology::TopologyBuilder builder;
  state::StoreSpec spec;
  spec.name = "per-colour";
  builder.AddSource("picks-source", {"picks"})
      .AddProcessor("by-value", [] { return std::make_unique<ByValue>(); }, {"picks-source"})
      .AddRepartitionSink("to-colours", "colours", {"by-value"})
      .AddRepartitionSource("colours-source", "colours")
      .AddProcessor("count", [] { return std::make_unique<Count>(); }, {"colours-source"})
      .AddSink("counts", "colour-counts", {"count"})
      .AddStateStore(spec, {"count"});
  auto topology = builder.Build("it-repart");
  ASSERT_TRUE(topology.ok()) << topology.status().ToString();
  ASSERT_EQ(topology->subtopologies().size(), 2u);

  topology::StreamsConfig config = testing::EmbeddedStreamsConfig(
      "it-repart", (*broker)->bootstrap_servers(), (dir / "state").string());
  config.threads = 2;
  topology::KafkaStreams streams(*topology, config, *admin);
  ASSERT_TRUE(streams.Start().ok());
  ASSERT_TRUE(testing::WaitFor([&] { return streams.Ready(); }, 30s))
      << streams.ReadyReport().dump();

  // 600 users each pick one of 6 colours; the users' keys spread over all input partitions.
  auto producer = testing::NewProducer((*broker)->bootstrap_servers());
  const std::vector<std::string> colours = {"red", "green", "blue", "cyan", "magenta", "yellow"};
  std::map<std::string, long> expected;
  for (int u = 0; u < 600; ++u) {
    const std::string& colour = colours[static_cast<size_t>(u * 7 % 6)];
    testing::Produce(producer.get(), "picks", "user-" + std::to_string(u), colour);
    ++expected[colour];
  }
  rd_kafka_flush(producer.get(), 10000);

  testing::TopicReader reader((*broker)->bootstrap_servers(), "colour-counts", 4);
  std::map<std::string, std::vector<long>> seen;
  bool done = testing::WaitFor(
      [&] {
        for (auto& m : reader.Poll(100)) seen[m.key].push_back(std::stol(m.value));
        if (seen.size() != expected.size()) return false;
        for (const auto& [colour, n] : expected) {
          if (seen[colour].empty() || seen[colour].back() != n) return false;
        }
        return true;
      },
      60s, 50ms);
  EXPECT_TRUE(done) << "colours seen: " << seen.size();
  for (const auto& [colour, counts] : seen) {
    // One task counts each colour, so its outputs are 1..n without gaps or repeats.
    for (size_t i = 0; i < counts.size(); ++i)
      ASSERT_EQ(counts[i], static_cast<long>(i + 1)) << colour;
  }
  streams.Stop();
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cm
