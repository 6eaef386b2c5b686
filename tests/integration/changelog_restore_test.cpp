// A restore reads a task's commit log and its changelogs together (ChangelogReader): each
// changelog record is written once a seal decides it, by naming it or by starting after it (its
// commit never sealed), and the end of the commit log decides the rest. The logs that crashed
// commits leave are written here by hand, one record per broker batch (the embedded broker
// returns one batch per partition per fetch), with the commit log lagging behind the changelog,
// so that records have to wait: the records of the first unsealed commit until the next seal
// decides them, mid-log, and the last record until the commit log ends.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
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

class ChangelogRestoreTest : public ::testing::TestWithParam<RestoreCase> {};

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

TEST_P(ChangelogRestoreTest, OnlyRecordsOfSealedCommitsAreRestored) {
  const std::string app = "it-restore";
  const std::string changelog = topology::Topology::ChangelogTopic(app, "counts");
  const std::string commits = topology::Topology::CommitTopic(app, 0);
  const auto dir = testing::FreshTestDirectory(std::string("cm-it-restore-") + GetParam().name);
  auto started = testing::TestBroker::Start(
      {{"count-input", 1}, {"count-output", 1}, {changelog, 1}, {commits, 1}});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto broker = std::move(started).value();
  topology::TopologyBuilder builder;
  counting::AddCountingTopology(builder);
  auto built = builder.Build(app);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const topology::Topology topology = std::move(built).value();
  auto producer = testing::NewProducer(broker->bootstrap_servers());

  // The changelog of task 0_0, as commits 1 and 2 wrote it around two that crashed.
  auto change = [&](const std::string& key, const std::string& count) {
    testing::ProduceAndFlush(producer.get(), changelog, 0, key, count);
  };
  change("a", "1");   // 0: commit 1
  change("b", "1");   // 1: commit 1
  change("a", "50");  // 2: a commit that never sealed
  change("c", "50");  // 3: a commit that never sealed
  change("a", "2");   // 4: commit 2
  change("b", "2");   // 5: commit 2
  change("c", "70");  // 6: a commit cut off before its seal, at the end
  // Its commit log: commit 1's seal, records that seal nothing (marks of published outputs),
  // commit 2's seal, and more marks.
  auto mark = [&](uint64_t seq) {
    const nlohmann::json j = {{"writer", "it-restore-writer"}, {"seq", seq}};
    testing::ProduceAndFlush(producer.get(), commits, 0, "0_0", j.dump(),
                             {{topology::kCommitRecordTypeHeader, "published"}});
  };
  auto seal = [&](uint64_t seq, int64_t first, int64_t end) {
    const nlohmann::json j = {{"writer", "it-restore-writer"},
                              {"seq", seq},
                              {"inputs", nlohmann::json::object()},
                              {"changelogs", {{"counts", {first, end}}}}};
    testing::ProduceAndFlush(producer.get(), commits, 0, "0_0", j.dump(),
                             {{topology::kCommitRecordTypeHeader, "seal"}});
  };
  seal(1, 0, 2);
  for (uint64_t seq = 100; seq < 108; ++seq) mark(seq);
  seal(2, 4, 6);
  // Enough of them that the commit log is still being read (one batch per fetch) when the
  // changelog, resumed after seal 2, reaches its last record, also when a resume is slow.
  for (uint64_t seq = 200; seq < 400; ++seq) mark(seq);

  testing::InProcessInstance instance(
      *broker, topology,
      testing::InstanceOptions{
          .state_dir = (dir / "state").string(),
          .configure = [bytes = GetParam().undecided_bytes](topology::StreamsConfig& c) {
            c.restore_undecided_bytes = bytes;
          }});
  ::testing::internal::CaptureStderr();
  const state::Status start = instance.Start();
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(start.ok()) << start.ToString();

  std::map<std::string, std::optional<std::string>> restored;
  ASSERT_TRUE(instance.streams()
                  .Query(topology::TaskId{0, 0},
                         [&](const topology::ReadOnlyStores& stores) {
                           for (const char* key : {"a", "b", "c"})
                             restored[key] = stores.KeyValue("counts")->Get(key);
                         })
                  .ok());
  EXPECT_EQ(restored["a"], std::optional<std::string>("2"));
  EXPECT_EQ(restored["b"], std::optional<std::string>("2"));
  EXPECT_EQ(restored["c"], std::nullopt) << "c was written only by commits that never sealed";

  const auto done = RestoreDone(log, "0_0");
  ASSERT_TRUE(done.has_value()) << "no restore_done line for 0_0 in:\n" << log;
  EXPECT_EQ((*done)["records"], 217) << "7 changelog and 210 commit-log records";
  EXPECT_EQ((*done)["skippedUnsealed"], 3);
  if (GetParam().changelog_waits) {
    // Offset 2 waits until seal 2 decides it and the changelog goes on; offset 6 waits again
    // until the commit log ends (offset 0 may wait for seal 1 too, by the order of a fetch).
    EXPECT_GE((*done)["changelogWaits"].get<int>(), 2);
  } else {
    EXPECT_EQ((*done)["changelogWaits"], 0);
  }

  // Counting goes on from the restored counts.
  testing::TopicReader output(broker->bootstrap_servers(), "count-output", 1);
  testing::Produce(producer.get(), "count-input", "a", "x");
  testing::Produce(producer.get(), "count-input", "c", "x");
  rd_kafka_flush(producer.get(), 10000);
  std::map<std::string, std::string> outputs;
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        for (auto& m : output.Poll(100)) outputs[m.key] = m.value;
        return outputs.size() == 2;
      },
      30s));
  EXPECT_EQ(outputs["a"], "3");
  EXPECT_EQ(outputs["c"], "1");
  instance.Stop();
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    UndecidedBudget, ChangelogRestoreTest,
    ::testing::Values(RestoreCase{"NoRoomSoEveryUndecidedRecordWaits", 0, true},
                      RestoreCase{"TheDefaultRoom",
                                  topology::StreamsConfig{}.restore_undecided_bytes, false}),
    [](const ::testing::TestParamInfo<RestoreCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace cm
