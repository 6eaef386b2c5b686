// Commands are appended to a topic and answered once the owning task has applied them.
#include "topology/query/command_sender.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "child_process.h"
#include "in_process.h"

namespace cm {
namespace {

using namespace std::chrono_literals;

// Applies "<id>|<payload>" once per id: stores the result under the id and counts applications.
class ApplyOnce final : public topology::Processor {
 public:
  void Init(topology::ProcessorContext& context) override {
    results_ = &context.GetKeyValueStore("results");
    applied_ = &context.GetKeyValueStore("applied");
  }
  void Process(const topology::Record& record) override {
    auto bar = record.value.find('|');
    std::string id = record.value.substr(0, bar);
    std::string payload = record.value.substr(bar + 1);
    if (payload == "ignore" || results_->Get(id)) return;  // "ignore": never answered
    results_->Put(id, "applied:" + payload);
    long n = 0;
    if (auto v = applied_->Get("total")) n = std::stol(*v);
    applied_->Put("total", std::to_string(n + 1));
  }

 private:
  state::KeyValueStore* results_ = nullptr;
  state::KeyValueStore* applied_ = nullptr;
};

state::StoreSpec KeyValueSpec(const std::string& name) {
  state::StoreSpec spec;
  spec.name = name;
  return spec;
}

TEST(CommandSenderTest, AnswersWithTheAppliedResultOnceAndTimesOutClearly) {
  auto dir =
      std::filesystem::temp_directory_path() / ("cm-it-commands-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  auto broker = testing::TestBroker::Start({{"commands", 2}});
  ASSERT_TRUE(broker.ok());
  topology::TopologyBuilder builder;
  builder.AddSource("in", {"commands"})
      .AddProcessor("apply", [] { return std::make_unique<ApplyOnce>(); }, {"in"})
      .AddStateStore(KeyValueSpec("results"), {"apply"})
      .AddStateStore(KeyValueSpec("applied"), {"apply"});
  auto topology = builder.Build("it-commands");
  ASSERT_TRUE(topology.ok());
  testing::InProcessInstance instance(**broker, *topology, {.state_dir = (dir / "state").string()});
  auto ready = instance.Start();
  ASSERT_TRUE(ready.ok()) << ready.ToString();
  topology::KafkaStreams& streams = instance.streams();
  topology::CommandSender& sender = instance.sender();
  auto command = [&](const std::string& org, const std::string& id, const std::string& payload) {
    return topology::CommandSender::Command{
        "commands", org, id + "|" + payload, streams.TaskForKey(0, org), "results", id};
  };
  auto first = sender.AppendAndAwait(command("org-1", "cmd-1", "hello"), 10s);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, "applied:hello");

  // A retry with the same id gets the same answer and is not applied again.
  auto retry = sender.AppendAndAwait(command("org-1", "cmd-1", "hello"), 10s);
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(*retry, "applied:hello");
  std::optional<std::string> total;
  const state::Status queried = streams.Query(
      streams.TaskForKey(0, "org-1"),
      [&](const topology::ReadOnlyStores& s) { total = s.KeyValue("applied")->Get("total"); });
  ASSERT_TRUE(queried.ok()) << queried.ToString();
  EXPECT_EQ(total, "1");

  // A command the task never answers ends in Unavailable at the deadline.
  auto started = std::chrono::steady_clock::now();
  auto ignored = sender.AppendAndAwait(command("org-2", "cmd-2", "ignore"), 500ms);
  ASSERT_FALSE(ignored.ok());
  EXPECT_EQ(ignored.status().code(), state::Status::Code::kUnavailable);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 500ms);
  instance.Stop();
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cm
