// The counting application over the embedded broker and real RocksDB, in one process.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "child_process.h"
#include "in_process.h"
#include "kafka_clients.h"
#include "processors/counting/counting_topology.h"

namespace cm {
namespace {

using namespace std::chrono_literals;

class CountingStreamsTest : public ::testing::TestWithParam<topology::ProcessingGuarantee> {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDirectory("cm-it-" + std::to_string(static_cast<int>(GetParam())));
    auto broker = testing::TestBroker::Start({{"count-input", 4}, {"count-output", 4}});
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
    counting::AddCountingTopology(builder_);
    auto t = builder_.Build("it-count");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    topology_ = std::make_unique<topology::Topology>(std::move(t).value());
    producer_ = testing::NewProducer(broker_->bootstrap_servers());
  }
  void TearDown() override {
    producer_.reset();
    broker_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<testing::InProcessInstance> StartStreams() {
    auto instance = std::make_unique<testing::InProcessInstance>(
        *broker_, *topology_,
        testing::InstanceOptions{.state_dir = (dir_ / "state").string(),
                                 .configure = [guarantee = GetParam()](topology::StreamsConfig& c) {
                                   c.guarantee = guarantee;
                                 }});
    auto started = instance->Start();
    EXPECT_TRUE(started.ok()) << started.ToString();
    return instance;
  }

  void ProduceRound(int records, int keys) {
    for (int i = 0; i < records; ++i) {
      testing::Produce(producer_.get(), "count-input", "k" + std::to_string(i % keys), "x");
    }
    rd_kafka_flush(producer_.get(), 10000);
  }

  // Waits until the last output of every key is `expected`.
  bool OutputsReach(testing::TopicReader& reader, std::map<std::string, long>& last, int keys,
                    long expected) {
    return testing::WaitFor(
        [&] {
          for (auto& m : reader.Poll(100)) last[m.key] = std::stol(m.value);
          if (static_cast<int>(last.size()) != keys) return false;
          for (const auto& [k, v] : last) {
            if (v != expected) return false;
          }
          return true;
        },
        60s, 50ms);
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestBroker> broker_;
  topology::TopologyBuilder builder_;
  std::unique_ptr<topology::Topology> topology_;
  testing::Kafka producer_;
};

TEST_P(CountingStreamsTest, RestoresFromChangelogAfterLocalStateIsDeleted) {
  testing::TopicReader reader(broker_->bootstrap_servers(), "count-output", 4);
  std::map<std::string, long> last;
  {
    auto streams = StartStreams();
    ProduceRound(5000, 100);
    ASSERT_TRUE(OutputsReach(reader, last, 100, 50));
    streams->Stop();
  }
  std::filesystem::remove_all(dir_ / "state");  // the local RocksDB directories are gone
  auto streams = StartStreams();                // restores every store from its changelog
  ProduceRound(5000, 100);
  EXPECT_TRUE(OutputsReach(reader, last, 100, 100))
      << "counts did not continue from the restored state";
  for (const auto& t : streams->streams().Threads()) {
    uint64_t entries = 0;
    for (const auto& task : t.tasks) entries += task.store_entries;
    EXPECT_GE(entries, 100u);
  }
}

TEST_P(CountingStreamsTest, PoisonRecordGoesToDlqWithReasonAndProcessingGoesOn) {
  testing::TopicReader dlq(broker_->bootstrap_servers(), "cloudmatrix.dlq", 8);
  testing::TopicReader reader(broker_->bootstrap_servers(), "count-output", 4);
  auto streams = StartStreams();
  ProduceRound(100, 10);
  testing::Produce(producer_.get(), "count-input", "", "poison");  // no key to count by
  ProduceRound(100, 10);
  std::map<std::string, long> last;
  EXPECT_TRUE(OutputsReach(reader, last, 10, 20));
  std::vector<testing::TopicReader::Message> dead;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        for (auto& m : dlq.Poll(100)) dead.push_back(std::move(m));
        return !dead.empty();
      },
      30s));
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].value, "poison");
  std::map<std::string, std::string> headers(dead[0].headers.begin(), dead[0].headers.end());
  EXPECT_EQ(headers["dlq-reason"], "record has no key to count by");
  EXPECT_EQ(headers["dlq-source"].rfind("it-count/0_", 0), 0u) << headers["dlq-source"];
  EXPECT_EQ(headers["dlq-topic"], "count-input");
}

INSTANTIATE_TEST_SUITE_P(Guarantees, CountingStreamsTest,
                         ::testing::Values(topology::ProcessingGuarantee::kExactlyOnce,
                                           topology::ProcessingGuarantee::kAtLeastOnce),
                         [](const auto& info) {
                           return info.param == topology::ProcessingGuarantee::kExactlyOnce
                                      ? "ExactlyOnce"
                                      : "AtLeastOnce";
                         });

}  // namespace
}  // namespace cm
