// The counting application over the embedded broker and real RocksDB, in one process.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "child_process.h"
#include "in_process.h"
#include "kafka_clients.h"
#include "processors/counting/counting_topology.h"
#include "topology/processor/processor.h"

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

  // Runs the counting topology, or `topology` when given.
  std::unique_ptr<testing::InProcessInstance> StartStreams(
      const topology::Topology* topology = nullptr) {
    auto instance = std::make_unique<testing::InProcessInstance>(
        *broker_, topology != nullptr ? *topology : *topology_,
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

  // Waits until the last output of every key is `expected`; `seen`, when given, gets every
  // output per key in log order.
  bool OutputsReach(testing::TopicReader& reader, std::map<std::string, long>& last, int keys,
                    long expected, std::map<std::string, std::vector<long>>* seen = nullptr) {
    return testing::WaitFor(
        [&] {
          for (auto& m : reader.Poll(100)) {
            last[m.key] = std::stol(m.value);
            if (seen != nullptr) (*seen)[m.key].push_back(last[m.key]);
          }
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

// Forwards every record at the next commit (ProcessorContext::ForwardAtCommit) and writes no
// store: what it holds is charged to the record cache by the task alone.
class DeferEachRecord final : public topology::Processor {
 public:
  void Init(topology::ProcessorContext& context) override { context_ = &context; }
  void Process(const topology::Record& record) override { context_->ForwardAtCommit(record); }

 private:
  topology::ProcessorContext* context_ = nullptr;
};

// Deferred records count against --cache-max-bytes: with a 16 KiB cache and a two-minute commit
// interval, 1,000 deferred records of ~100 bytes make the thread commit early, so every one
// reaches the output topic long before the interval, each once.
TEST_P(CountingStreamsTest, DeferredRecordsOverTheCacheBudgetCommitEarly) {
  topology::TopologyBuilder builder;
  builder.AddSource("in", {"count-input"})
      .AddProcessor("defer", [] { return std::make_unique<DeferEachRecord>(); }, {"in"})
      .AddSink("out", "count-output", {"defer"});
  auto built = builder.Build("it-defer-budget");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  testing::InProcessInstance instance(
      *broker_, *built,
      testing::InstanceOptions{.state_dir = (dir_ / "state").string(),
                               .configure = [guarantee = GetParam()](topology::StreamsConfig& c) {
                                 c.guarantee = guarantee;
                                 c.commit_interval = 120s;
                                 c.cache_max_bytes = 16 << 10;
                               }});
  auto started = instance.Start();
  ASSERT_TRUE(started.ok()) << started.ToString();

  const std::string value(100, 'v');
  for (int i = 0; i < 1000; ++i)
    testing::Produce(producer_.get(), "count-input", "k" + std::to_string(i), value);
  ASSERT_EQ(rd_kafka_flush(producer_.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

  testing::TopicReader reader(broker_->bootstrap_servers(), "count-output", 4);
  std::map<std::string, int> outputs;
  const bool all = testing::WaitFor(
      [&] {
        for (auto& m : reader.Poll(100)) ++outputs[m.key];
        return outputs.size() == 1000;
      },
      30s, 50ms);
  EXPECT_TRUE(all) << outputs.size() << " of 1000 records forwarded before the commit interval";
  for (const auto& [key, n] : outputs) EXPECT_EQ(n, 1) << key << " forwarded twice";
  instance.streams().Stop();
}

// CountEmit::kLatestPerCommit over the broker: each key's counts arrive in increasing order,
// none twice, far fewer than the records, ending at the exact count; and across a restart
// from the changelogs alone they go on from it.
TEST_P(CountingStreamsTest, CountsEmittedPerCommitAreExactAndFewerThanTheRecords) {
  topology::TopologyBuilder builder;
  counting::CountingTopologyOptions options;
  options.emit = counting::CountEmit::kLatestPerCommit;
  counting::AddCountingTopology(builder, options);
  auto built = builder.Build("it-count-per-commit");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  testing::TopicReader reader(broker_->bootstrap_servers(), "count-output", 4);
  std::map<std::string, long> last;
  std::map<std::string, std::vector<long>> seen;
  {
    auto streams = StartStreams(&*built);
    ProduceRound(5000, 100);
    ASSERT_TRUE(OutputsReach(reader, last, 100, 50, &seen));
    streams->Stop();
  }
  std::filesystem::remove_all(dir_ / "state");
  auto streams = StartStreams(&*built);
  ProduceRound(5000, 100);
  ASSERT_TRUE(OutputsReach(reader, last, 100, 100, &seen))
      << "counts did not continue from the restored state";
  size_t outputs = 0;
  for (const auto& [key, counts] : seen) {
    outputs += counts.size();
    for (size_t i = 1; i < counts.size(); ++i) {
      ASSERT_LT(counts[i - 1], counts[i]) << key << ": a count emitted twice or out of order";
    }
  }
  EXPECT_LT(outputs, 10000u / 4) << "the counts were not emitted once per commit";
}

// Forwards each record with the task's stream time as its value.
class StreamTimeEcho final : public topology::Processor {
 public:
  void Init(topology::ProcessorContext& context) override { context_ = &context; }
  void Process(const topology::Record& record) override {
    topology::Record out;
    out.key = record.key;
    out.value = std::to_string(context_->StreamTime());
    out.timestamp_ms = record.timestamp_ms;
    context_->Forward(out);
  }

 private:
  topology::ProcessorContext* context_ = nullptr;
};

// Each commit seals the task's stream time: a task restored from the changelogs alone (its local
// state deleted) goes on from it, so a record older than what the task saw before does not move
// its stream time back (windows closed before stay closed).
TEST_P(CountingStreamsTest, StreamTimeContinuesFromTheLastSealAfterARestore) {
  topology::TopologyBuilder builder;
  builder.AddSource("in", {"count-input"})
      .AddProcessor("echo", [] { return std::make_unique<StreamTimeEcho>(); }, {"in"})
      .AddSink("out", "count-output", {"echo"});
  auto built = builder.Build("it-stream-time");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const topology::Topology echo = std::move(built).value();
  constexpr int kKeys = 16;
  constexpr int64_t kLate = 1'000'000'000'000;  // 2001, well before what round 1 sends
  const int64_t round1 = kLate + 86'400'000;
  testing::TopicReader reader(broker_->bootstrap_servers(), "count-output", 4);
  std::map<std::string, long> seen;
  auto read_until = [&](auto done) {
    return testing::WaitFor(
        [&] {
          for (auto& m : reader.Poll(100)) seen[m.key] = std::stol(m.value);
          return done();
        },
        60s, 50ms);
  };
  {
    auto streams = StartStreams(&echo);
    for (int i = 0; i < kKeys; ++i)
      testing::Produce(producer_.get(), "count-input", "k" + std::to_string(i), "x", round1 + i);
    rd_kafka_flush(producer_.get(), 10000);
    ASSERT_TRUE(read_until([&] { return static_cast<int>(seen.size()) == kKeys; }));
    streams->Stop();
  }
  std::map<std::string, long> before = seen;
  std::filesystem::remove_all(dir_ / "state");
  auto streams = StartStreams(&echo);
  seen.clear();
  for (int i = 0; i < kKeys; ++i)
    testing::Produce(producer_.get(), "count-input", "k" + std::to_string(i), "late", kLate);
  rd_kafka_flush(producer_.get(), 10000);
  ASSERT_TRUE(read_until([&] { return static_cast<int>(seen.size()) == kKeys; }));
  for (const auto& [key, stream_time] : seen) {
    EXPECT_GE(stream_time, before.at(key)) << key << ": stream time went back";
    EXPECT_GE(stream_time, round1) << key;
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
