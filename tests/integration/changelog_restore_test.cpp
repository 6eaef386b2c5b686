// A restore reads a task's commit log and its changelogs together (ChangelogReader): each
// changelog record is written once a seal decides it, by naming it or by starting after it (its
// commit never sealed), and the end of the commit log decides the rest. The logs that crashed
// commits leave are written here by hand, one record per broker batch (the embedded broker
// returns one batch per partition per fetch), with the commit log lagging behind the changelog,
// so that records have to wait: the records of the first unsealed commit until the next seal
// decides them, mid-log, and the last record until the commit log ends. Seals that list the
// gaps below them let a restore read only the commit log's tail.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "in_process.h"
#include "kafka_clients.h"
#include "processors/counting/counting_topology.h"
#include "topology/runtime/outbox.h"

namespace cm {
namespace {

using namespace std::chrono_literals;

struct RestoreCase {
  const char* name;
  size_t undecided_bytes;  // StreamsConfig::restore_undecided_bytes
  bool changelog_waits;    // whether the changelog must have paused for its commit log
};

// The counts of keys a, b and c in task 0_0's store; nullopt for a key it does not hold.
using Counts = std::map<std::string, std::optional<std::string>>;
// What the hand-written logs' sealed commits leave: c only ever came from unsealed ones.
const Counts kSealedCounts = {{"a", "2"}, {"b", "2"}, {"c", std::nullopt}};

// The restore_done log line of `task` among the captured log lines.
std::optional<nlohmann::json> RestoreDone(const std::string& log, const std::string& task) {
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.value("event", "") == "restore_done" && j.value("task", "") == task)
      return j;
  }
  return std::nullopt;
}

bool Rewound(const std::string& log) {
  return log.find("\"restore_commit_log_rewound\"") != std::string::npos;
}

// Task 0_0 of the counting topology over one-partition topics, its logs written by hand.
class RestoreLogs {
 public:
  explicit RestoreLogs(const std::string& name)
      : dir_(testing::FreshTestDirectory("cm-it-restore-" + name)) {}

  void SetUp() {
    auto started = testing::TestBroker::Start(
        {{"count-input", 1}, {"count-output", 1}, {changelog_, 1}, {commits_, 1}});
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    broker_ = std::move(started).value();
    topology::TopologyBuilder builder;
    counting::AddCountingTopology(builder);
    auto built = builder.Build(app_);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    topology_.emplace(std::move(built).value());
    producer_ = testing::NewProducer(broker_->bootstrap_servers());
  }

  // The changelog as commits 1 and 2 wrote it around two that crashed.
  void WriteChangelog() {
    Change("a", "1");   // 0: commit 1
    Change("b", "1");   // 1: commit 1
    Change("a", "50");  // 2: a commit that never sealed
    Change("c", "50");  // 3: a commit that never sealed
    Change("a", "2");   // 4: commit 2
    Change("b", "2");   // 5: commit 2
    Change("c", "70");  // 6: a commit cut off before its seal, at the end
  }
  void Change(const std::string& key, const std::string& count) {
    testing::ProduceAndFlush(producer_.get(), changelog_, 0, key, count);
  }
  // A record that seals nothing: the mark of a seal's published outputs.
  void Mark(uint64_t seq) {
    const nlohmann::json j = {{"writer", "it-restore-writer"}, {"seq", seq}};
    testing::ProduceAndFlush(producer_.get(), commits_, 0, "0_0", j.dump(),
                             {{topology::kCommitRecordTypeHeader, "published"}});
  }
  // A seal of changelog offsets [first, end); with `gaps`, also the unsealed ranges below and
  // the changelog's position, as seals have carried them since they list gaps.
  void Seal(uint64_t seq, int64_t first, int64_t end, std::optional<nlohmann::json> gaps = {}) {
    nlohmann::json j = {{"writer", "it-restore-writer"},
                        {"seq", seq},
                        {"inputs", nlohmann::json::object()},
                        {"changelogs", {{"counts", {first, end}}}}};
    if (gaps) {
      j["gaps"] = {{"counts", *gaps}};
      j["ends"] = {{"counts", end}};
    }
    testing::ProduceAndFlush(producer_.get(), commits_, 0, "0_0", j.dump(),
                             {{topology::kCommitRecordTypeHeader, "seal"}});
  }

  // Starts an instance on `state` and returns its log (the restore's lines).
  std::string Start(testing::InProcessInstance& instance) {
    ::testing::internal::CaptureStderr();
    const state::Status start = instance.Start();
    std::string log = ::testing::internal::GetCapturedStderr();
    EXPECT_TRUE(start.ok()) << start.ToString();
    return log;
  }
  std::unique_ptr<testing::InProcessInstance> NewInstance(const std::string& state,
                                                          size_t undecided_bytes) {
    return std::make_unique<testing::InProcessInstance>(
        *broker_, *topology_,
        testing::InstanceOptions{.state_dir = (dir_ / state).string(),
                                 .configure = [undecided_bytes](topology::StreamsConfig& c) {
                                   c.restore_undecided_bytes = undecided_bytes;
                                 }});
  }

  Counts StoreCounts(testing::InProcessInstance& instance) {
    Counts counts;
    EXPECT_TRUE(instance.streams()
                    .Query(topology::TaskId{0, 0},
                           [&](const topology::ReadOnlyStores& stores) {
                             for (const char* key : {"a", "b", "c"})
                               counts[key] = stores.KeyValue("counts")->Get(key);
                           })
                    .ok());
    return counts;
  }

  // Counts "a" and "c" once more and returns their outputs.
  std::map<std::string, std::string> CountOn() {
    testing::TopicReader output(broker_->bootstrap_servers(), "count-output", 1);
    testing::Produce(producer_.get(), "count-input", "a", "x");
    testing::Produce(producer_.get(), "count-input", "c", "x");
    rd_kafka_flush(producer_.get(), 10000);
    std::map<std::string, std::string> outputs;
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          for (auto& m : output.Poll(100)) outputs[m.key] = m.value;
          return outputs.size() == 2;
        },
        30s));
    return outputs;
  }

  // The last seal in the commit log, read to the log's end.
  nlohmann::json LastSeal() {
    testing::TopicReader log(broker_->bootstrap_servers(), commits_, 1);
    int64_t low = 0, end = 0;
    EXPECT_EQ(
        rd_kafka_query_watermark_offsets(producer_.get(), commits_.c_str(), 0, &low, &end, 10000),
        RD_KAFKA_RESP_ERR_NO_ERROR);
    nlohmann::json last;
    int64_t next = 0;
    EXPECT_TRUE(testing::WaitFor(
        [&] {
          for (const auto& m : log.Poll(100)) {
            next = m.offset + 1;
            bool seal = true;
            for (const auto& [name, value] : m.headers)
              if (name == topology::kCommitRecordTypeHeader) seal = value == "seal";
            if (seal) last = nlohmann::json::parse(m.value);
          }
          return next >= end;
        },
        30s));
    return last;
  }

  void CleanUp() {
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
  }

 private:
  const std::string app_ = "it-restore";
  const std::string changelog_ = topology::Topology::ChangelogTopic(app_, "counts");
  const std::string commits_ = topology::Topology::CommitTopic(app_, 0);
  const std::filesystem::path dir_;
  std::unique_ptr<testing::TestBroker> broker_;
  std::optional<topology::Topology> topology_;
  testing::Kafka producer_;
};

class ChangelogRestoreTest : public ::testing::TestWithParam<RestoreCase> {};

// Seals written before seals listed gaps: the commit log's tail decides nothing, so the whole
// log is read, and each record waits for the seal that decides it.
TEST_P(ChangelogRestoreTest, OnlyRecordsOfSealedCommitsAreRestored) {
  RestoreLogs logs(GetParam().name);
  ASSERT_NO_FATAL_FAILURE(logs.SetUp());
  logs.WriteChangelog();
  // Its commit log: commit 1's seal, records that seal nothing, commit 2's seal, and more.
  logs.Seal(1, 0, 2);
  for (uint64_t seq = 100; seq < 108; ++seq) logs.Mark(seq);
  logs.Seal(2, 4, 6);
  // Enough of them that the commit log is still being read (one batch per fetch) when the
  // changelog, resumed after seal 2, reaches its last record, also when a resume is slow.
  for (uint64_t seq = 200; seq < 400; ++seq) logs.Mark(seq);

  auto instance = logs.NewInstance("state", GetParam().undecided_bytes);
  const std::string log = logs.Start(*instance);
  EXPECT_EQ(logs.StoreCounts(*instance), kSealedCounts)
      << "c was written only by commits that never sealed";

  const auto done = RestoreDone(log, "0_0");
  ASSERT_TRUE(done.has_value()) << "no restore_done line for 0_0 in:\n" << log;
  EXPECT_TRUE(Rewound(log)) << "the tail has no seal with gaps: the log is read from its start";
  EXPECT_EQ((*done)["records"], 217) << "7 changelog and 210 commit-log records";
  EXPECT_EQ((*done)["skippedUnsealed"], 3);
  if (GetParam().changelog_waits) {
    // Offset 0 comes before the tail of the commit log decides anything: the changelog waits
    // (and when the rewind comes before the rest of it was fetched, the new assignment holds
    // it out until seal 1 decides offset 0). Whether it waits again (offset 2 for seal 2,
    // offset 6 for the end) depends on how much of it librdkafka fetched before the pause
    // arrived: all seven records at times, under load.
    EXPECT_GE((*done)["changelogWaits"].get<int>(), 1) << log;
  } else {
    EXPECT_EQ((*done)["changelogWaits"], 0);
  }

  // Counting goes on from the restored counts.
  auto outputs = logs.CountOn();
  EXPECT_EQ(outputs["a"], "3");
  EXPECT_EQ(outputs["c"], "1");
  instance->Stop();
  logs.CleanUp();
}

INSTANTIATE_TEST_SUITE_P(
    UndecidedBudget, ChangelogRestoreTest,
    ::testing::Values(RestoreCase{"NoRoomSoEveryUndecidedRecordWaits", 0, true},
                      RestoreCase{"TheDefaultRoom",
                                  topology::StreamsConfig{}.restore_undecided_bytes, false}),
    [](const ::testing::TestParamInfo<RestoreCase>& info) { return std::string(info.param.name); });

// A seal that lists the gaps below it decides every changelog record before it: a restore
// reads only the commit log's tail (seal 1 lies before it and is never read), and the seals the
// restored task writes list the gaps it skipped, so a restore from nothing of the state it
// went on to build needs only them too.
TEST(ChangelogRestoreGapsTest, TheLastSealsGapsDecideTheWholeChangelog) {
  RestoreLogs logs("gaps");
  ASSERT_NO_FATAL_FAILURE(logs.SetUp());
  logs.WriteChangelog();
  logs.Seal(1, 0, 2, nlohmann::json::array());
  for (uint64_t seq = 100; seq < 300; ++seq) logs.Mark(seq);
  logs.Seal(2, 4, 6, nlohmann::json::array({{2, 4}}));
  for (uint64_t seq = 300; seq < 308; ++seq) logs.Mark(seq);
  const int64_t tail = topology::StreamsConfig{}.restore_commit_tail;

  {
    auto instance = logs.NewInstance("first", 0);
    const std::string log = logs.Start(*instance);
    EXPECT_EQ(logs.StoreCounts(*instance), kSealedCounts)
        << "offset 3 is in seal 2's gaps, 6 after its end";
    const auto done = RestoreDone(log, "0_0");
    ASSERT_TRUE(done.has_value()) << "no restore_done line for 0_0 in:\n" << log;
    EXPECT_FALSE(Rewound(log)) << log;
    EXPECT_EQ((*done)["records"], 7 + tail) << "the changelog and the commit log's tail";
    EXPECT_EQ((*done)["skippedUnsealed"], 3);

    auto outputs = logs.CountOn();
    EXPECT_EQ(outputs["a"], "3");
    EXPECT_EQ(outputs["c"], "1");
    instance->Stop();
  }
  // The instance's last seal: its changelog records at offsets 7 and 8, and every gap.
  const nlohmann::json seal = logs.LastSeal();
  EXPECT_EQ(seal["gaps"], nlohmann::json::parse(R"({"counts": [[2, 4], [6, 7]]})")) << seal;
  EXPECT_EQ(seal["ends"]["counts"], 9) << seal;

  // From nothing, on another state directory: the instance's seal decides it all.
  auto again = logs.NewInstance("second", 0);
  const std::string log = logs.Start(*again);
  EXPECT_EQ(logs.StoreCounts(*again), (Counts{{"a", "3"}, {"b", "2"}, {"c", "1"}}));
  const auto done = RestoreDone(log, "0_0");
  ASSERT_TRUE(done.has_value()) << "no restore_done line for 0_0 in:\n" << log;
  EXPECT_FALSE(Rewound(log)) << log;
  EXPECT_EQ((*done)["skippedUnsealed"], 3);
  again->Stop();
  logs.CleanUp();
}

}  // namespace
}  // namespace cm
