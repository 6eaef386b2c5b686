// Replay (application reset) and backfill (a bounded second application) of the counting
// application, over the embedded broker and real RocksDB, in one process.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "child_process.h"
#include "in_process.h"
#include "kafka_clients.h"
#include "processors/counting/counting_topology.h"
#include "topology/common/wall_clock.h"
#include "topology/query/streams_metadata.h"
#include "topology/runtime/kafka_streams.h"
#include "topology/tools/application_reset.h"
#include "topology/tools/backfill.h"

namespace cm {
namespace {

using namespace std::chrono_literals;

constexpr int kPartitions = 4;

class ReplayBackfillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDirectory("cm-replay");
    auto broker =
        testing::TestBroker::Start({{"count-input", kPartitions}, {"count-output", kPartitions}});
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
    producer_ = testing::NewProducer(broker_->bootstrap_servers());
    now_ = topology::WallClockMs();
  }
  void TearDown() override {
    producer_.reset();
    broker_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<topology::Topology> BuildTopology(const std::string& app) {
    topology::TopologyBuilder builder;
    counting::AddCountingTopology(builder);
    auto t = builder.Build(app);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return std::make_unique<topology::Topology>(std::move(t).value());
  }

  // `t` on the harness with its state in dir_/state; `configure` changes the config after that.
  std::unique_ptr<testing::InProcessInstance> Start(
      const topology::Topology& t,
      std::function<void(topology::StreamsConfig&)> configure = nullptr) {
    auto instance = std::make_unique<testing::InProcessInstance>(
        *broker_, t,
        testing::InstanceOptions{.state_dir = (dir_ / "state").string(),
                                 .configure = std::move(configure)});
    auto started = instance->Start();
    EXPECT_TRUE(started.ok()) << started.ToString();
    return instance;
  }

  topology::ResetOptions ResetFrom(std::optional<int64_t> from_ms) {
    topology::ResetOptions o;
    o.bootstrap_servers = broker_->bootstrap_servers();
    o.embedded_broker = true;
    o.state_dir = (dir_ / "state").string();
    o.from_ms = from_ms;
    if (from_ms) o.from_text = std::to_string(*from_ms);
    return o;
  }

  // `count` records for each of `keys`, with record timestamp `ts`.
  void ProduceKeys(const std::vector<std::string>& keys, int count, int64_t ts) {
    for (int i = 0; i < count; ++i) {
      for (const auto& k : keys) testing::Produce(producer_.get(), "count-input", k, "x", ts);
    }
    ASSERT_EQ(rd_kafka_flush(producer_.get(), 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
  }

  // The committed count of `key` as an interactive query sees it (nullopt: never counted).
  static std::optional<long> CountOf(const topology::KafkaStreams& streams,
                                     const std::string& key) {
    std::optional<long> out;
    auto s = streams.Query(streams.TaskForKey(0, key), [&](const topology::ReadOnlyStores& st) {
      if (auto v = st.KeyValue("counts")->Get(key)) out = std::stol(*v);
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  // Waits until every key's committed count is as expected.
  static bool CountsAre(const topology::KafkaStreams& streams,
                        const std::map<std::string, long>& expected) {
    return testing::WaitFor(
        [&] {
          for (const auto& [k, v] : expected) {
            if (CountOf(streams, k) != v) return false;
          }
          return true;
        },
        60s, 100ms);
  }

  int64_t EndOffset(const std::string& topic, int32_t partition) {
    int64_t low = 0, high = 0;
    auto c = testing::NewClient(RD_KAFKA_CONSUMER, broker_->bootstrap_servers(),
                                {{"group.id", "probe"}});
    EXPECT_EQ(
        rd_kafka_query_watermark_offsets(c.get(), topic.c_str(), partition, &low, &high, 10000),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    return high;
  }

  int64_t TotalEnd(const std::string& topic) {
    int64_t total = 0;
    for (int p = 0; p < kPartitions; ++p) total += EndOffset(topic, p);
    return total;
  }

  static std::vector<std::string> Keys(const std::string& prefix, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
    return out;
  }

  static std::map<std::string, long> Expect(const std::vector<std::string>& keys, long count) {
    std::map<std::string, long> out;
    for (const auto& k : keys) out[k] = count;
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestBroker> broker_;
  testing::Kafka producer_;
  int64_t now_ = 0;
};

TEST_F(ReplayBackfillTest, DryRunPlanChangesNothing) {
  auto t = BuildTopology("rp-dry");
  auto keys = Keys("k", 20);
  {
    auto streams = Start(*t);
    ProduceKeys(keys, 10, 0);
    ASSERT_TRUE(CountsAre(streams->streams(), Expect(keys, 10)));
  }
  topology::ApplicationReset reset(*t, ResetFrom(std::nullopt), broker_->admin());
  ASSERT_TRUE(reset.CheckStopped().ok());
  auto plan = reset.Plan();
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  int64_t inputs_now = 0;
  for (const auto& m : plan->moves) {
    if (m.role == topology::PartitionRole::kInput) {
      EXPECT_EQ(m.target, 0) << m.topic << "[" << m.partition << "]";
      inputs_now += m.current;
    } else {
      EXPECT_EQ(m.target, EndOffset(m.topic, m.partition)) << m.topic;
    }
  }
  EXPECT_EQ(inputs_now, 200) << "the plan shows the group's offsets as they are";
  ASSERT_FALSE(plan->directories.empty());
  std::string description = plan->Describe();
  EXPECT_NE(description.find("input count-input[0]"), std::string::npos) << description;
  EXPECT_NE(description.find("delete " + (dir_ / "state" / "rp-dry").string()), std::string::npos)
      << description;

  // Planning wrote no marker and deleted nothing: the application continues where it was.
  EXPECT_EQ(EndOffset(topology::Topology::ResetsTopic("rp-dry"), 0), 0);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "state" / "rp-dry"));
  auto streams = Start(*t);
  ProduceKeys(keys, 5, 0);
  EXPECT_TRUE(CountsAre(streams->streams(), Expect(keys, 15)));
}

TEST_F(ReplayBackfillTest, ReplayFromBeginningRebuildsTheSameFigures) {
  auto t = BuildTopology("rp-all");
  auto keys = Keys("k", 30);
  {
    auto streams = Start(*t);
    ProduceKeys(keys, 10, 0);
    ASSERT_TRUE(CountsAre(streams->streams(), Expect(keys, 10)));
    ProduceKeys(keys, 7, 0);
    ASSERT_TRUE(CountsAre(streams->streams(), Expect(keys, 17)));
  }
  const int64_t changelog_end = TotalEnd("rp-all-counts-changelog");
  const int64_t outputs_before = TotalEnd("count-output");
  ASSERT_EQ(outputs_before, 30 * 17);
  topology::ApplicationReset reset(*t, ResetFrom(std::nullopt), broker_->admin());
  ASSERT_TRUE(reset.CheckStopped().ok());
  auto plan = reset.Plan();
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_TRUE(reset.Apply(*plan).ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ / "state" / "rp-all")) << "local state is removed";

  // Every record is processed again into empty stores: the same figures as the first run, not
  // twice them (the old changelog is not restored on top).
  auto streams = Start(*t);
  EXPECT_TRUE(CountsAre(streams->streams(), Expect(keys, 17)));
  EXPECT_GT(TotalEnd("rp-all-counts-changelog"), changelog_end) << "the stores were rebuilt";

  // The replay sent none of its outputs again (the mock broker writes no transaction markers,
  // so end offsets count records); records after the old position have theirs as usual.
  ProduceKeys(keys, 2, 0);
  EXPECT_TRUE(CountsAre(streams->streams(), Expect(keys, 19)));
  EXPECT_TRUE(testing::WaitFor([&] { return TotalEnd("count-output") == 30 * 19; }, 30s))
      << TotalEnd("count-output") << " outputs, expected " << 30 * 19;
}

TEST_F(ReplayBackfillTest, ReplayFromTimeSkipsEarlierRecordsAndRestoresNothingBeforeTheReset) {
  auto t = BuildTopology("rp-time");
  auto old_keys = Keys("old", 10);
  auto keys = Keys("k", 10);
  const int64_t t0 = now_ - 3'600'000;  // an hour ago
  const int64_t t1 = now_ - 600'000;    // ten minutes ago
  {
    auto streams = Start(*t);
    ProduceKeys(old_keys, 1, t0);
    ProduceKeys(keys, 3, t0);
    ProduceKeys(keys, 2, t1);
    auto all = Expect(keys, 5);
    for (const auto& k : old_keys) all[k] = 1;
    ASSERT_TRUE(CountsAre(streams->streams(), all));
  }
  topology::ApplicationReset reset(*t, ResetFrom(t1 - 60'000), broker_->admin());
  auto plan = reset.Plan();
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  int64_t skipped = 0;
  for (const auto& m : plan->moves) {
    if (m.role == topology::PartitionRole::kInput) skipped += m.target;
  }
  EXPECT_EQ(skipped, 40) << "the inputs move past the 40 records before --from";
  ASSERT_TRUE(reset.Apply(*plan).ok());
  {
    auto streams = Start(*t);
    EXPECT_TRUE(CountsAre(streams->streams(), Expect(keys, 2)))
        << "only the records after --from count";
    for (const auto& k : old_keys) EXPECT_EQ(CountOf(streams->streams(), k), std::nullopt) << k;
    ProduceKeys(keys, 1, 0);
    EXPECT_TRUE(CountsAre(streams->streams(), Expect(keys, 3)));
  }
  // The local state is lost: the restore reads the changelog from the reset's offsets only,
  // so keys written to the changelog before the reset do not come back.
  std::filesystem::remove_all(dir_ / "state");
  auto streams = Start(*t);
  EXPECT_TRUE(CountsAre(streams->streams(), Expect(keys, 3)));
  for (const auto& k : old_keys) EXPECT_EQ(CountOf(streams->streams(), k), std::nullopt) << k;
}

TEST_F(ReplayBackfillTest, StateThatPredatesAResetIsDiscarded) {
  auto t = BuildTopology("rp-stale");
  auto keys = Keys("k", 10);
  {
    auto streams = Start(*t);
    ProduceKeys(keys, 4, 0);
    ASSERT_TRUE(CountsAre(streams->streams(), Expect(keys, 4)));
  }
  // Another instance's state directory survives the reset (replay deletes only the one it
  // is given): a copy of it must not bring the old counts back.
  std::filesystem::copy(dir_ / "state", dir_ / "other-instance",
                        std::filesystem::copy_options::recursive);
  topology::ApplicationReset reset(*t, ResetFrom(std::nullopt), broker_->admin());
  auto plan = reset.Plan();
  ASSERT_TRUE(plan.ok());
  ASSERT_TRUE(reset.Apply(*plan).ok());
  auto streams = Start(
      *t, [&](topology::StreamsConfig& c) { c.state_dir = (dir_ / "other-instance").string(); });
  EXPECT_TRUE(CountsAre(streams->streams(), Expect(keys, 4)));
  ProduceKeys(keys, 1, 0);
  EXPECT_TRUE(CountsAre(streams->streams(), Expect(keys, 5)));
}

TEST_F(ReplayBackfillTest, RefusesWhileAnInstanceRuns) {
  auto t = BuildTopology("rp-live");
  auto streams = Start(*t);
  topology::StreamsMetadata metadata({.bootstrap_servers = broker_->bootstrap_servers(),
                                      .topic = topology::KafkaStreams::InstancesTopic("rp-live"),
                                      .instance_id = "a",
                                      .endpoint = "127.0.0.1:1",
                                      .interval = 200ms},
                                     [&] { return streams->streams().RunningTasks(); });
  ASSERT_TRUE(metadata.Start().ok());
  topology::ApplicationReset reset(*t, ResetFrom(std::nullopt), broker_->admin());
  state::Status refused;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        refused = reset.CheckStopped();
        return !refused.ok();
      },
      10s, 200ms));
  EXPECT_EQ(refused.code(), state::Status::Code::kConflict);
  EXPECT_NE(refused.message().find("instance a"), std::string::npos) << refused.message();
  metadata.Stop();  // a clean stop announces that it leaves
  streams->Stop();
  topology::ApplicationReset after(*t, ResetFrom(std::nullopt), broker_->admin());
  EXPECT_TRUE(after.CheckStopped().ok());
}

TEST_F(ReplayBackfillTest, BackfillCountsOnlyItsRangeWithoutTouchingLiveOutputs) {
  auto t_live = BuildTopology("bf-live");
  auto live = Start(*t_live);
  auto keys = Keys("k", 20);
  const int64_t t0 = now_ - 3 * 3'600'000, t1 = now_ - 2 * 3'600'000, t2 = now_ - 3'600'000;
  ProduceKeys(keys, 2, t0);
  ProduceKeys(keys, 3, t1);
  ProduceKeys(keys, 4, t2);
  ASSERT_TRUE(CountsAre(live->streams(), Expect(keys, 9)));
  // Outputs are published right after the commit that made the counts visible.
  ASSERT_TRUE(testing::WaitFor([&] { return TotalEnd("count-output") == 20 * 9; }, 30s));
  int64_t dlq = TotalEnd("cloudmatrix.dlq");

  auto t_bf = BuildTopology("bf-range");
  auto prepared = topology::Backfill::Prepare(*t_bf, broker_->admin(), ResetFrom(t1), t2);
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  auto bf = Start(*t_bf, [&](topology::StreamsConfig& c) { prepared->Configure(c); });
  // Input that arrives while the backfill runs is past its stop offsets.
  ProduceKeys(keys, 1, t1 + 1);
  topology::BackfillProgress progress;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        progress = prepared->Progress(bf->streams());
        return progress.finished;
      },
      60s, 100ms));
  EXPECT_EQ(progress.total, 60u);
  EXPECT_EQ(progress.done, 60u);
  EXPECT_TRUE(CountsAre(bf->streams(), Expect(keys, 3))) << "the backfill counts exactly [t1, t2)";
  EXPECT_TRUE(CountsAre(live->streams(), Expect(keys, 10))) << "the live application keeps running";

  // Outputs went to the backfill's own topic; the live output topic got only the live
  // application's one output for each of the 20 new records (the mock broker writes no
  // transaction markers, so end offsets count records).
  EXPECT_TRUE(testing::WaitFor([&] { return TotalEnd("bf-range-count-output") == 60; }, 30s));
  EXPECT_TRUE(testing::WaitFor([&] { return TotalEnd("count-output") == 20 * 10; }, 30s));
  EXPECT_EQ(TotalEnd("count-output"), 20 * 10);
  EXPECT_EQ(TotalEnd("bf-range-count-output"), 60);
  EXPECT_EQ(TotalEnd("cloudmatrix.dlq"), dlq);
}

}  // namespace
}  // namespace cm
