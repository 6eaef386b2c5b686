// A sub-topology reading two co-partitioned topics, run by two stream threads of one group:
// each task must receive partition p of both topics, whichever thread owns it.
#include <gtest/gtest.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "child_process.h"
#include "in_process.h"
#include "kafka_clients.h"

namespace cm {
namespace {

using namespace std::chrono_literals;

// Counts per key over both topics, and emits "<count>:<topic>" so the test sees where records
// came from and which task counted them.
class BothTopicsCounter final : public topology::Processor {
 public:
  void Init(topology::ProcessorContext& context) override {
    context_ = &context;
    store_ = &context.GetKeyValueStore("both-counts");
  }
  void Process(const topology::Record& record) override {
    long count = 0;
    if (auto v = store_->Get(record.key)) count = std::stol(*v);
    store_->Put(record.key, std::to_string(++count));
    topology::Record out;
    out.key = record.key;
    out.value = std::to_string(count) + ":" + context_->TaskId();
    out.timestamp_ms = record.timestamp_ms;
    context_->Forward(out);
  }

 private:
  topology::ProcessorContext* context_ = nullptr;
  state::KeyValueStore* store_ = nullptr;
};

TEST(CoPartitionedStreamsTest, EachTaskReadsTheSamePartitionOfEverySourceTopic) {
  auto dir =
      std::filesystem::temp_directory_path() / ("cm-it-copart-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto broker = testing::TestBroker::Start({{"left", 4}, {"right", 4}});
  ASSERT_TRUE(broker.ok());

  topology::TopologyBuilder builder;
  state::StoreSpec spec;
  spec.name = "both-counts";
  builder.AddSource("both", {"left", "right"})
      .AddProcessor("counter", [] { return std::make_unique<BothTopicsCounter>(); }, {"both"})
      .AddSink("out", "both-output", {"counter"})
      .AddStateStore(spec, {"counter"});
  auto topology = builder.Build("it-copart");
  ASSERT_TRUE(topology.ok()) << topology.status().ToString();

  testing::InProcessInstance instance(
      **broker, *topology,
      {.state_dir = (dir / "state").string(),
       .configure = [](topology::StreamsConfig& c) { c.threads = 2; }});
  auto started = instance.Start();
  ASSERT_TRUE(started.ok()) << started.ToString();
  topology::KafkaStreams& streams = instance.streams();

  auto producer = testing::NewProducer((*broker)->bootstrap_servers());
  constexpr int kKeys = 40;
  for (int i = 0; i < 400; ++i) {
    testing::Produce(producer.get(), i % 2 == 0 ? "left" : "right", "k" + std::to_string(i % kKeys),
                     "x");
  }
  rd_kafka_flush(producer.get(), 10000);

  testing::TopicReader reader((*broker)->bootstrap_servers(), "both-output", 4);
  std::map<std::string, std::pair<long, std::string>> last;  // key -> (count, task)
  std::map<std::string, std::set<std::string>> tasks_of_key;
  bool done = testing::WaitFor(
      [&] {
        for (auto& m : reader.Poll(100)) {
          auto colon = m.value.find(':');
          last[m.key] = {std::stol(m.value.substr(0, colon)), m.value.substr(colon + 1)};
          tasks_of_key[m.key].insert(m.value.substr(colon + 1));
        }
        if (static_cast<int>(last.size()) != kKeys) return false;
        for (const auto& [k, v] : last) {
          if (v.first != 10) return false;
        }
        return true;
      },
      60s, 50ms);
  EXPECT_TRUE(done) << "keys seen: " << last.size();
  for (const auto& [key, tasks] : tasks_of_key) {
    EXPECT_EQ(tasks.size(), 1u) << key << " was counted by more than one task";
  }
  // Both threads own tasks, so co-partitioned assignment held across members.
  int threads_with_tasks = 0;
  for (const auto& t : streams.Threads()) threads_with_tasks += t.tasks.empty() ? 0 : 1;
  EXPECT_EQ(threads_with_tasks, 2);
  // Named as `top -H` and perf show them.
  std::set<std::string> thread_names;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) thread_names.insert(name);
  }
  EXPECT_TRUE(thread_names.contains("cm-stream-0") && thread_names.contains("cm-stream-1"))
      << ::testing::PrintToString(thread_names);
  streams.Stop();
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cm
