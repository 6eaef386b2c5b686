// The outbox's recovery on the embedded broker: a task whose last seal has no `published` mark
// (its thread was killed while publishing) sends, when it starts again, each sealed output that
// is not yet in its target partition. The commit log a killed thread leaves is written here by
// hand, so that the moment of the kill is exact instead of a matter of luck.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "in_process.h"
#include "kafka_clients.h"
#include "processors/counting/counting_topology.h"
#include "topology/kafka/kafka_client.h"
#include "topology/runtime/outbox.h"

namespace cm {
namespace {

using namespace std::chrono_literals;

std::string HeaderOf(const testing::TopicReader::Message& m, const std::string& name) {
  for (const auto& [key, value] : m.headers)
    if (key == name) return value;
  return "";
}

// One thread commit seals all its tasks under one sequence number. Task 0_0's output of that
// commit reached the output topic; the thread was killed before task 0_1's did. Restarted, 0_1
// must not take 0_0's delivered output for its own: it sends its output, once.
TEST(OutboxRepublishTest, ATaskSendsItsSealedOutputsThatAnotherTaskOfTheCommitDidNotDeliver) {
  const auto dir = testing::FreshTestDirectory("cm-it-republish");
  auto started = testing::TestBroker::Start({{"count-input", 2}, {"count-output", 1}});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto broker = std::move(started).value();
  topology::TopologyBuilder builder;
  counting::AddCountingTopology(builder);
  auto built = builder.Build("it-republish");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const topology::Topology topology = std::move(built).value();
  testing::InstanceOptions options{.state_dir = (dir / "state").string()};
  testing::TopicReader output(broker->bootstrap_servers(), "count-output", 1);
  auto producer = testing::NewProducer(broker->bootstrap_servers());

  // A first run creates the commit log and one seal per task.
  {
    testing::InProcessInstance instance(*broker, topology, options);
    ASSERT_TRUE(instance.Start().ok());
    for (const char* key : {"a", "b", "c", "d"})
      testing::Produce(producer.get(), "count-input", key, "x");
    rd_kafka_flush(producer.get(), 10000);
    int outputs = 0;
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          outputs += static_cast<int>(output.Poll(100).size());
          return outputs == 4;
        },
        60s));
    instance.Stop();
  }

  // What the killed thread left: 0_0's output delivered, 0_1's outbox and seal, no mark.
  const std::string writer = "it-republish-it-StreamThread-0-1";
  const uint64_t seq = 7;
  testing::ProduceAndFlush(
      producer.get(), "count-output", 0, "a", "from 0_0",
      {{topology::kOutputIdHeader, topology::OutputIdPrefix(writer, seq, "0_0") + "0"}});
  const std::string commits = topology::Topology::CommitTopic("it-republish", 0);
  int64_t low = 0;
  int64_t outbox_offset = 0;
  ASSERT_EQ(rd_kafka_query_watermark_offsets(producer.get(), commits.c_str(), 1, &low,
                                             &outbox_offset, 10000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  topology::Record sealed;
  sealed.key = "b";
  sealed.value = "from 0_1";
  const auto chunks = topology::EncodeOutbox({{"count-output", sealed}}, 512 * 1024);
  ASSERT_EQ(chunks.size(), 1u);
  testing::ProduceAndFlush(producer.get(), commits, 1, "0_1", chunks.front(),
                           {{topology::kCommitRecordTypeHeader, "outbox"}});
  const nlohmann::json seal = {{"writer", writer},
                               {"seq", seq},
                               {"inputs", nlohmann::json::object()},
                               {"changelogs", nlohmann::json::object()},
                               {"outbox", {outbox_offset, outbox_offset + 1}},
                               {"sinks", nlohmann::json::object()}};
  testing::ProduceAndFlush(producer.get(), commits, 1, "0_1", seal.dump(),
                           {{topology::kCommitRecordTypeHeader, "seal"}});

  testing::InProcessInstance instance(*broker, topology, options);
  ASSERT_TRUE(instance.Start().ok());
  std::vector<testing::TopicReader::Message> seen;
  auto collect = [&](int wait_ms) {
    for (auto& m : output.Poll(wait_ms))
      if (m.value == "from 0_1") seen.push_back(std::move(m));
    return !seen.empty();
  };
  EXPECT_TRUE(testing::WaitFor([&] { return collect(100); }, 30s))
      << "0_1's sealed output was never sent";
  collect(1000);  // nothing more may follow
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen.front().key, "b");
  EXPECT_EQ(HeaderOf(seen.front(), topology::kOutputIdHeader),
            topology::OutputIdPrefix(writer, seq, "0_1") + "0");
  instance.Stop();
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cm
