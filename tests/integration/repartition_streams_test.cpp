// Re-keying through an internal repartition topic into a second sub-topology, over the broker.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "child_process.h"
#include "in_process.h"
#include "kafka_clients.h"
#include "topology/tools/application_reset.h"

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

constexpr int kPartitions = 4;
const std::vector<std::string> kColours = {"red", "green", "blue", "cyan", "magenta", "yellow"};

// picks -> by-value -> (repartition "colours") -> count -> colour-counts, on two threads.
class RepartitionStreamsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDirectory("cm-it-repart");
    auto broker = testing::TestBroker::Start({{"picks", kPartitions}});
    ASSERT_TRUE(broker.ok());
    broker_ = std::move(broker).value();
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
    topology_ = std::make_unique<topology::Topology>(std::move(topology).value());
    producer_ = testing::NewProducer(broker_->bootstrap_servers());
    reader_ = std::make_unique<testing::TopicReader>(broker_->bootstrap_servers(), "colour-counts",
                                                     kPartitions);
  }
  void TearDown() override {
    streams_.reset();
    reader_.reset();
    producer_.reset();
    broker_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  void Start() {
    streams_ = std::make_unique<testing::InProcessInstance>(
        *broker_, *topology_,
        testing::InstanceOptions{.state_dir = (dir_ / "state").string(),
                                 .configure = [](topology::StreamsConfig& c) { c.threads = 2; }});
    auto started = streams_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
  }

  // Users `from`..`to`-1 each pick one of the colours; the users' keys spread over all input
  // partitions.
  void Pick(int from, int to) {
    for (int u = from; u < to; ++u) {
      const std::string& colour = kColours[static_cast<size_t>(u * 7 % 6)];
      testing::Produce(producer_.get(), "picks", "user-" + std::to_string(u), colour);
      ++expected_[colour];
    }
    ASSERT_EQ(rd_kafka_flush(producer_.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  // Reads colour-counts until every colour's last output is its expected count, then expects
  // each colour's outputs to be exactly 1..n: one task counts each colour, so a gap or a repeat
  // is a lost or a twice-sent output.
  void ExpectOutputsOneToN() {
    bool done = testing::WaitFor(
        [&] {
          for (auto& m : reader_->Poll(100)) seen_[m.key].push_back(std::stol(m.value));
          if (seen_.size() != expected_.size()) return false;
          for (const auto& [colour, n] : expected_) {
            if (seen_[colour].empty() || seen_[colour].back() < n) return false;
          }
          return true;
        },
        60s, 50ms);
    EXPECT_TRUE(done) << "colours seen: " << seen_.size();
    for (const auto& [colour, counts] : seen_) {
      EXPECT_EQ(counts.size(), static_cast<size_t>(expected_[colour])) << colour;
      for (size_t i = 0; i < counts.size(); ++i)
        ASSERT_EQ(counts[i], static_cast<long>(i + 1)) << colour;
    }
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestBroker> broker_;
  std::unique_ptr<topology::Topology> topology_;
  testing::Kafka producer_;
  std::unique_ptr<testing::InProcessInstance> streams_;
  std::map<std::string, long> expected_;
  std::map<std::string, std::vector<long>> seen_;
  std::unique_ptr<testing::TopicReader> reader_;
};

TEST_F(RepartitionStreamsTest, RecordsReKeyedIntoASecondSubTopologyAreCountedByTheirNewKey) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_NO_FATAL_FAILURE(Pick(0, 600));
  ExpectOutputsOneToN();
}

// A replay reprocesses every pick: the records it writes to the repartition topic carry the
// replayed header, so the downstream task rebuilds its counts without sending them again.
TEST_F(RepartitionStreamsTest, ReplayRebuildsDownstreamCountsWithoutSendingTheirOutputsAgain) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_NO_FATAL_FAILURE(Pick(0, 600));
  ExpectOutputsOneToN();
  streams_->Stop();
  streams_.reset();

  topology::ResetOptions o;
  o.bootstrap_servers = broker_->bootstrap_servers();
  o.embedded_broker = true;
  o.state_dir = (dir_ / "state").string();
  topology::ApplicationReset reset(*topology_, o, broker_->admin());
  ASSERT_TRUE(reset.CheckStopped().ok());
  auto plan = reset.Plan();
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_TRUE(reset.Apply(*plan).ok());

  // The counts go on from the rebuilt 600 picks: 601.., not 1.. again and not 1201...
  ASSERT_NO_FATAL_FAILURE(Start());
  // Wait until the downstream tasks have rebuilt their counts from all 600 replayed picks (each
  // one's output dropped as already sent). A pick that arrives earlier is counted after only
  // the replayed picks its repartition partition holds before it: the upstream tasks replay
  // their partitions at their own pace, so one colour's count could go on from 21 while
  // another upstream task still replays that colour's picks. This test once failed that way
  // about 1 run in 5 (ops/known-flaky); the README's replay section says so.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        uint64_t dropped = 0;
        for (const auto& t : streams_->streams().Threads()) dropped += t.replayed_outputs_dropped;
        return dropped == 600;
      },
      60s));
  ASSERT_NO_FATAL_FAILURE(Pick(600, 660));
  ExpectOutputsOneToN();
}

}  // namespace
}  // namespace cm
