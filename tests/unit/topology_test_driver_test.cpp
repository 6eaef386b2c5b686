#include "topology/testing/topology_test_driver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "processors/counting/counting_topology.h"
#include "topology/kafka/partitioner.h"
#include "topology/processor/processor.h"
#include "topology/processor/topology.h"

namespace cm::topology {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr char kDlq[] = "cloudmatrix.dlq";

// A processor made of lambdas; each task gets its own instance (and context).
class FnProcessor final : public Processor {
 public:
  using InitFn = std::function<void(ProcessorContext&)>;
  using ProcessFn = std::function<void(ProcessorContext&, const Record&)>;
  FnProcessor(InitFn init, ProcessFn process)
      : init_(std::move(init)), process_(std::move(process)) {}
  void Init(ProcessorContext& context) override {
    context_ = &context;
    if (init_) init_(context);
  }
  void Process(const Record& record) override { process_(*context_, record); }

 private:
  InitFn init_;
  ProcessFn process_;
  ProcessorContext* context_ = nullptr;
};

ProcessorSupplier Fn(FnProcessor::ProcessFn process, FnProcessor::InitFn init = {}) {
  return [process, init] { return std::make_unique<FnProcessor>(init, process); };
}

state::StoreSpec Spec(std::string name, state::StoreType type, state::WindowSpec window = {}) {
  state::StoreSpec spec;
  spec.name = std::move(name);
  spec.type = type;
  spec.window = window;
  return spec;
}

Topology BuildOrDie(const TopologyBuilder& b, const std::string& app) {
  auto built = b.Build(app);
  if (!built.ok()) throw std::runtime_error("Build failed: " + built.status().ToString());
  return std::move(built).value();
}

std::unique_ptr<TopologyTestDriver> MakeDriver(const Topology& t, int32_t partitions = 1,
                                               int64_t wall_clock_start_ms = 0) {
  TestDriverOptions options;
  options.partitions = partitions;
  options.wall_clock_start_ms = wall_clock_start_ms;
  auto driver = TopologyTestDriver::Create(t, options);
  if (!driver.ok()) throw std::runtime_error("Create failed: " + driver.status().ToString());
  return std::move(driver).value();
}

Topology CountingTopology() {
  TopologyBuilder b;
  counting::AddCountingTopology(b);
  return BuildOrDie(b, "counting-app");
}

std::optional<std::string> StoredCount(TopologyTestDriver& driver, const std::string& key) {
  auto* store = driver.TaskFor("count-input", key).state().key_value_store("counts");
  if (store == nullptr) throw std::runtime_error("no counts store");
  return store->Get(key);
}

using KeyValues = std::vector<std::pair<std::string, std::string>>;

KeyValues AsKeyValues(const std::vector<Record>& records) {
  KeyValues out;
  for (const auto& r : records) out.emplace_back(r.key, r.value);
  return out;
}

// --- counting ------------------------------------------------------------------------------

TEST(TopologyTestDriverTest, CountsPerKeyAcrossPartitionsInOrder) {
  constexpr int32_t kPartitions = 4;
  Topology t = CountingTopology();
  auto driver = MakeDriver(t, kPartitions);

  std::mt19937 rng(20240611);
  std::vector<std::string> keys;
  for (int i = 0; i < 150; ++i) keys.push_back("org-" + std::to_string(i));
  std::uniform_int_distribution<size_t> pick(0, keys.size() - 1);

  std::map<std::string, uint64_t> expected;
  KeyValues expected_out;
  std::vector<int64_t> expected_ts;
  for (int i = 0; i < 3000; ++i) {
    const std::string& key = keys[pick(rng)];
    int64_t ts = 1'000 + i;
    driver->PipeInput("count-input", key, "payload-" + std::to_string(i), ts);
    expected_out.emplace_back(key, std::to_string(++expected[key]));
    expected_ts.push_back(ts);
  }

  auto out = driver->ReadOutput("count-output");
  ASSERT_EQ(out.size(), expected_out.size());
  EXPECT_EQ(AsKeyValues(out), expected_out);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i].timestamp_ms, expected_ts[i]) << i;
  EXPECT_TRUE(driver->ReadOutput("count-output").empty()) << "ReadOutput removes what it returns";
  EXPECT_TRUE(driver->ReadOutput(kDlq).empty());

  // Every partition got work, and the store of the owning task holds exactly the count.
  uint64_t processed = 0;
  for (int32_t p = 0; p < kPartitions; ++p) {
    EXPECT_GT(driver->Task(0, p).processed(), 0u) << "partition " << p;
    processed += driver->Task(0, p).processed();
  }
  EXPECT_EQ(processed, 3000u);
  for (const auto& [key, count] : expected) {
    EXPECT_EQ(StoredCount(*driver, key), std::to_string(count)) << key;
    int32_t owner = PartitionForKey(key, kPartitions);
    EXPECT_EQ(driver->TaskFor("count-input", key).id().partition, owner);
    for (int32_t p = 0; p < kPartitions; ++p) {
      if (p == owner) continue;
      EXPECT_FALSE(driver->Task(0, p).state().key_value_store("counts")->Get(key).has_value())
          << key << " leaked into partition " << p;
    }
  }
}

TEST(TopologyTestDriverTest, EmptyKeyGoesToDlqAndTaskGoesOn) {
  Topology t = CountingTopology();
  auto driver = MakeDriver(t, 3);
  driver->PipeInput("count-input", "a", "1", 10);
  driver->PipeInput("count-input", "", "keyless-bytes", 11, {{"trace", "t-1"}});
  driver->PipeInput("count-input", "a", "2", 12);

  auto dlq = driver->ReadOutput(kDlq);
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].key, "");
  EXPECT_EQ(dlq[0].value, "keyless-bytes") << "the DLQ keeps the original bytes";
  EXPECT_EQ(dlq[0].timestamp_ms, 11);
  EXPECT_EQ(dlq[0].FindHeader("trace"), "t-1") << "original headers are kept";
  auto reason = dlq[0].FindHeader("dlq-reason");
  ASSERT_TRUE(reason.has_value());
  EXPECT_THAT(std::string(*reason), HasSubstr("no key"));
  auto source = dlq[0].FindHeader("dlq-source");
  ASSERT_TRUE(source.has_value());
  EXPECT_THAT(std::string(*source), HasSubstr("counting-app"));
  EXPECT_THAT(std::string(*source), HasSubstr("count"));
  EXPECT_EQ(dlq[0].FindHeader("dlq-topic"), "count-input");

  EXPECT_EQ(AsKeyValues(driver->ReadOutput("count-output")), (KeyValues{{"a", "1"}, {"a", "2"}}));
  EXPECT_EQ(driver->TaskFor("count-input", "").dropped_to_dlq(), 1u);
  EXPECT_FALSE(
      driver->TaskFor("count-input", "").state().key_value_store("counts")->Get("").has_value());
}

TEST(TopologyTestDriverTest, ThrowingProcessorRecordGoesToDlqWithExceptionText) {
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("picky", Fn([](ProcessorContext& ctx, const Record& r) {
                      if (r.value == "poison") throw std::runtime_error("cannot digest " + r.key);
                      ctx.Forward(r);
                    }),
                    {"src"})
      .AddSink("sink", "out", {"picky"});
  Topology t = BuildOrDie(b, "picky-app");
  auto driver = MakeDriver(t, 2);
  driver->PipeInput("in", "k1", "good", 1);
  driver->PipeInput("in", "k2", "poison", 2);
  driver->PipeInput("in", "k3", "good", 3);
  driver->PipeInput("in", "k2", "fine-now", 4);

  EXPECT_EQ(AsKeyValues(driver->ReadOutput("out")),
            (KeyValues{{"k1", "good"}, {"k3", "good"}, {"k2", "fine-now"}}));
  auto dlq = driver->ReadOutput(kDlq);
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].key, "k2");
  EXPECT_EQ(dlq[0].value, "poison");
  ASSERT_TRUE(dlq[0].FindHeader("dlq-reason").has_value());
  EXPECT_THAT(std::string(*dlq[0].FindHeader("dlq-reason")), HasSubstr("cannot digest k2"));
  ASSERT_TRUE(dlq[0].FindHeader("dlq-source").has_value());
  EXPECT_THAT(std::string(*dlq[0].FindHeader("dlq-source")), HasSubstr("picky"));
  EXPECT_EQ(driver->TaskFor("in", "k2").dropped_to_dlq(), 1u);
}

TEST(TopologyTestDriverTest, RestartKeepsCommittedCountsAndLosesTheRest) {
  Topology t = CountingTopology();
  auto driver = MakeDriver(t, 2);
  driver->PipeInput("count-input", "a", "", 1);
  driver->PipeInput("count-input", "a", "", 2);
  driver->PipeInput("count-input", "b", "", 3);
  driver->Commit();
  driver->PipeInput("count-input", "a", "", 4);
  driver->PipeInput("count-input", "b", "", 5);
  driver->PipeInput("count-input", "c", "", 6);
  EXPECT_EQ(StoredCount(*driver, "a"), "3") << "reads see uncommitted writes";
  EXPECT_EQ(StoredCount(*driver, "c"), "1");

  ASSERT_TRUE(driver->Restart().ok());
  EXPECT_EQ(StoredCount(*driver, "a"), "2");
  EXPECT_EQ(StoredCount(*driver, "b"), "1");
  EXPECT_FALSE(StoredCount(*driver, "c").has_value());

  driver->ReadOutput("count-output");
  driver->PipeInput("count-input", "a", "", 7);
  driver->PipeInput("count-input", "c", "", 8);
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("count-output")), (KeyValues{{"a", "3"}, {"c", "1"}}));

  // A second commit/restart cycle keeps the new state too.
  driver->Commit();
  ASSERT_TRUE(driver->Restart().ok());
  EXPECT_EQ(StoredCount(*driver, "a"), "3");
  EXPECT_EQ(StoredCount(*driver, "c"), "1");
}

// --- repartition ---------------------------------------------------------------------------

// words: key = user, value = word -> re-keyed by word -> counted per word.
Topology WordCountTopology() {
  TopologyBuilder b;
  b.AddSource("words-source", {"words"})
      .AddProcessor("rekey", Fn([](ProcessorContext& ctx, const Record& r) {
                      Record out;
                      out.key = r.value;
                      out.value = r.key;
                      out.timestamp_ms = r.timestamp_ms;
                      ctx.Forward(out);
                    }),
                    {"words-source"})
      .AddRepartitionSink("to-by-word", "by-word", {"rekey"})
      .AddRepartitionSource("from-by-word", "by-word")
      .AddProcessor("count", Fn([](ProcessorContext& ctx, const Record& r) {
                      auto& store = ctx.GetKeyValueStore("word-counts");
                      int64_t n = 0;
                      if (auto v = store.Get(r.key)) n = std::stoll(*v);
                      store.Put(r.key, std::to_string(++n));
                      Record out;
                      out.key = r.key;
                      out.value = std::to_string(n);
                      out.timestamp_ms = r.timestamp_ms;
                      ctx.Forward(out);
                    }),
                    {"from-by-word"})
      .AddSink("count-sink", "word-count-output", {"count"})
      .AddStateStore(Spec("word-counts", state::StoreType::kKeyValue), {"count"});
  return BuildOrDie(b, "wc");
}

TEST(TopologyTestDriverTest, RepartitionCountsByNewKey) {
  constexpr int32_t kPartitions = 3;
  Topology t = WordCountTopology();
  ASSERT_EQ(t.subtopologies().size(), 2u);
  const std::string repartition = Topology::RepartitionTopic("wc", "by-word");
  auto driver = MakeDriver(t, kPartitions);

  std::mt19937 rng(7);
  const std::vector<std::string> users = {"alice", "bob", "carol", "dave", "erin", "frank"};
  const std::vector<std::string> words = {"apple", "pear", "fig", "plum", "kiwi", "lime", "date"};
  std::map<std::string, int> expected;
  KeyValues expected_out;
  bool crossed_partitions = false;
  for (int i = 0; i < 500; ++i) {
    const std::string& user = users[rng() % users.size()];
    const std::string& word = words[rng() % words.size()];
    crossed_partitions |= PartitionForKey(user, kPartitions) != PartitionForKey(word, kPartitions);
    driver->PipeInput("words", user, word, i);
    expected_out.emplace_back(word, std::to_string(++expected[word]));
  }
  ASSERT_TRUE(crossed_partitions) << "the test data must move records between partitions";

  EXPECT_EQ(AsKeyValues(driver->ReadOutput("word-count-output")), expected_out);
  auto through = driver->ReadOutput(repartition);
  ASSERT_EQ(through.size(), 500u);
  EXPECT_EQ(through[0].key, expected_out[0].first) << "repartition records are keyed by word";
  EXPECT_TRUE(driver->ReadOutput(kDlq).empty());

  int downstream = *t.SubTopologyOfSource(repartition);
  for (const auto& [word, n] : expected) {
    StreamTask& task = driver->TaskFor(repartition, word);
    EXPECT_EQ(task.id().subtopology, downstream);
    EXPECT_EQ(task.id().partition, PartitionForKey(word, kPartitions));
    EXPECT_EQ(task.state().key_value_store("word-counts")->Get(word), std::to_string(n)) << word;
  }
  // The upstream sub-topology's tasks have no store.
  int upstream = *t.SubTopologyOfSource("words");
  EXPECT_EQ(driver->Task(upstream, 0).state().key_value_store("word-counts"), nullptr);
}

// --- punctuation and stream time -----------------------------------------------------------

struct PunctuationLog {
  std::vector<std::string> events;
};

Topology PunctuatingTopology(PunctuationLog* log, PunctuationType type,
                             std::chrono::milliseconds interval) {
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("p",
                    Fn(
                        [log](ProcessorContext&, const Record& r) {
                          log->events.push_back("rec " + std::to_string(r.timestamp_ms));
                        },
                        [log, type, interval](ProcessorContext& ctx) {
                          ctx.Schedule(interval, type, [log](int64_t ts) {
                            log->events.push_back("punct " + std::to_string(ts));
                          });
                        }),
                    {"src"});
  return BuildOrDie(b, "punct-app");
}

std::vector<std::string> Punctuations(const PunctuationLog& log) {
  std::vector<std::string> out;
  for (const auto& e : log.events) {
    if (e.rfind("punct ", 0) == 0) out.push_back(e);
  }
  return out;
}

TEST(TopologyTestDriverTest, StreamTimePunctuationFollowsRecordTimestamps) {
  PunctuationLog log;
  Topology t = PunctuatingTopology(&log, PunctuationType::kStreamTime, 10ms);
  auto driver = MakeDriver(t);

  driver->PipeInput("in", "k", "", 100);
  driver->PipeInput("in", "k", "", 105);
  EXPECT_TRUE(Punctuations(log).empty()) << "stream time has not advanced an interval yet";

  // The wall clock does not drive stream-time punctuation.
  driver->AdvanceWallClock(3'600'000);
  EXPECT_TRUE(Punctuations(log).empty());

  driver->PipeInput("in", "k", "", 110);  // one interval after the first record
  driver->PipeInput("in", "k", "", 109);  // out of order: stream time stays at 110
  driver->PipeInput("in", "k", "", 119);
  driver->PipeInput("in", "k", "", 125);
  driver->PipeInput("in", "k", "", 500);  // a jump fires once, not once per skipped interval
  driver->PipeInput("in", "k", "", 505);
  driver->PipeInput("in", "k", "", 510);

  EXPECT_EQ(log.events,
            (std::vector<std::string>{"rec 100", "rec 105", "rec 110", "punct 110", "rec 109",
                                      "rec 119", "rec 125", "punct 125", "rec 500", "punct 500",
                                      "rec 505", "rec 510", "punct 510"}));
  EXPECT_EQ(driver->Task(0, 0).stream_time(), 510);
}

TEST(TopologyTestDriverTest, WallClockPunctuationFiresOnlyOnAdvanceWallClock) {
  PunctuationLog log;
  Topology t = PunctuatingTopology(&log, PunctuationType::kWallClockTime, 1000ms);
  auto driver = MakeDriver(t, 1, /*wall_clock_start_ms=*/5'000);
  EXPECT_EQ(driver->wall_clock_ms(), 5'000);

  // Records, however late their timestamps, do not fire wall-clock punctuation.
  driver->PipeInput("in", "k", "", 1'000'000);
  driver->PipeInput("in", "k", "", 9'000'000'000);
  EXPECT_TRUE(Punctuations(log).empty());

  driver->AdvanceWallClock(999);
  EXPECT_TRUE(Punctuations(log).empty());
  driver->AdvanceWallClock(1);  // 6000
  EXPECT_EQ(Punctuations(log), std::vector<std::string>{"punct 6000"});
  driver->AdvanceWallClock(2'500);  // 8500: fires once
  driver->AdvanceWallClock(400);    // 8900: not yet
  driver->AdvanceWallClock(100);    // 9000
  EXPECT_EQ(Punctuations(log),
            (std::vector<std::string>{"punct 6000", "punct 8500", "punct 9000"}));
  EXPECT_EQ(driver->wall_clock_ms(), 9'000);
}

TEST(TopologyTestDriverTest, StreamTimeIsTheLargestTimestampSeenPerTask) {
  std::vector<std::pair<std::string, int64_t>> seen;  // key, StreamTime() while processing it
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("p", Fn([&seen](ProcessorContext& ctx, const Record& r) {
                      seen.emplace_back(r.key, ctx.StreamTime());
                    }),
                    {"src"});
  Topology t = BuildOrDie(b, "st-app");
  constexpr int32_t kPartitions = 8;
  auto driver = MakeDriver(t, kPartitions);

  // Two keys in different partitions: each task has its own stream time.
  std::string k1 = "key-0";
  std::string k2;
  for (int i = 1; k2.empty(); ++i) {
    std::string candidate = "key-" + std::to_string(i);
    if (PartitionForKey(candidate, kPartitions) != PartitionForKey(k1, kPartitions)) k2 = candidate;
  }

  driver->PipeInput("in", k1, "", 50);
  driver->PipeInput("in", k1, "", 30);
  driver->PipeInput("in", k1, "", 70);
  driver->PipeInput("in", k1, "", 60);
  driver->PipeInput("in", k2, "", 10);
  driver->PipeInput("in", k2, "", 20);

  using Seen = std::vector<std::pair<std::string, int64_t>>;
  EXPECT_EQ(seen, (Seen{{k1, 50}, {k1, 50}, {k1, 70}, {k1, 70}, {k2, 10}, {k2, 20}}));
  EXPECT_EQ(driver->TaskFor("in", k1).stream_time(), 70);
  EXPECT_EQ(driver->TaskFor("in", k2).stream_time(), 20);
}

// Stream time is committed with the stores: after a restart a task goes on from the committed
// stream time (not from nothing, not from what it saw after the commit), and its stream-time
// punctuation fires one interval after it, not at the first record.
TEST(TopologyTestDriverTest, StreamTimeGoesOnFromTheLastCommitAfterARestart) {
  std::vector<int64_t> seen;        // StreamTime() while processing
  std::vector<int64_t> punctuated;  // stream times a 100 ms punctuator fired at
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor(
          "p",
          Fn([&seen](ProcessorContext& ctx, const Record&) { seen.push_back(ctx.StreamTime()); },
             [&punctuated](ProcessorContext& ctx) {
               ctx.Schedule(100ms, PunctuationType::kStreamTime,
                            [&punctuated](int64_t t) { punctuated.push_back(t); });
             }),
          {"src"});
  Topology t = BuildOrDie(b, "st-restart-app");
  auto driver = MakeDriver(t);
  driver->PipeInput("in", "k", "", 1000);
  driver->Commit();
  driver->PipeInput("in", "k", "", 5000);  // not committed: lost with the restart
  ASSERT_TRUE(driver->Restart().ok());
  punctuated.clear();
  driver->PipeInput("in", "k", "", 400);
  driver->PipeInput("in", "k", "", 1050);
  driver->PipeInput("in", "k", "", 1100);
  EXPECT_EQ(seen, (std::vector<int64_t>{1000, 5000, 1000, 1050, 1100}));
  EXPECT_EQ(punctuated, (std::vector<int64_t>{1100}));
}

// --- forwarding ----------------------------------------------------------------------------

// Input marked as replayed after a reset (the engine's kReplayedHeader) is processed as the
// engine processes it: Replaying() is true for that input only, and its outputs to external
// topics are dropped, as they were published before the reset.
TEST(TopologyTestDriverTest, ReplayedInputIsReplayingAndItsOutputsAreDropped) {
  std::vector<std::pair<std::string, bool>> seen;
  bool replaying_in_punctuation = true;
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("p",
                    Fn(
                        [&seen](ProcessorContext& ctx, const Record& r) {
                          seen.emplace_back(r.key, ctx.Replaying());
                          ctx.Forward(r);
                        },
                        [&replaying_in_punctuation](ProcessorContext& ctx) {
                          ctx.Schedule(1s, PunctuationType::kWallClockTime,
                                       [&replaying_in_punctuation, &ctx](int64_t) {
                                         replaying_in_punctuation = ctx.Replaying();
                                       });
                        }),
                    {"src"})
      .AddSink("sink", "out", {"p"});
  Topology t = BuildOrDie(b, "replay-app");
  auto driver = MakeDriver(t);
  driver->PipeInput("in", "old", "v", 1, {{"cm-replayed", "1"}});
  driver->PipeInput("in", "new", "v", 2);
  driver->AdvanceWallClock(1000);
  EXPECT_EQ(seen, (std::vector<std::pair<std::string, bool>>{{"old", true}, {"new", false}}));
  EXPECT_FALSE(replaying_in_punctuation);
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("out")), (KeyValues{{"new", "v"}}));
}

// A kByKey source: a record in a partition that does not own its key (a producer with another
// partitioner) is re-produced to the owning partition, marked where it first landed, and
// processed there only; keyless records stay where they are; a record misrouted again after
// being re-produced is dead-lettered rather than bounced on. A kAsProduced source processes
// records where they arrive.
TEST(TopologyTestDriverTest, MisroutedRecordsOfAKeyedSourceAreReroutedToTheOwningTask) {
  constexpr int32_t kPartitions = 4;
  std::vector<std::tuple<std::string, std::string, int32_t>> seen;  // key, value, partition
  TopologyBuilder b;
  for (auto [source, topic, partitioning] :
       {std::tuple{"keyed", "keyed-in", SourcePartitioning::kByKey},
        std::tuple{"loose", "loose-in", SourcePartitioning::kAsProduced}}) {
    const std::string name = source;
    b.AddSource(name, {topic}, partitioning)
        .AddProcessor(name + "-p", Fn([&seen](ProcessorContext& ctx, const Record& r) {
                        seen.emplace_back(r.key, r.value, ctx.Partition());
                      }),
                      {name});
  }
  Topology t = BuildOrDie(b, "reroute-app");
  auto driver = MakeDriver(t, kPartitions);
  const auto wrong = [&](const std::string& key) {
    return (PartitionForKey(key, kPartitions) + 1) % kPartitions;
  };

  driver->PipeInputToPartition("keyed-in", wrong("acme"), "acme", "1", 10);
  driver->PipeInputToPartition("keyed-in", std::nullopt, "acme", "2", 11);
  driver->PipeInputToPartition("keyed-in", wrong("globex"), "globex", "3", 12);
  driver->PipeInputToPartition("keyed-in", 2, "", "keyless", 13);
  const int32_t acme = PartitionForKey("acme", kPartitions);
  const int32_t globex = PartitionForKey("globex", kPartitions);
  EXPECT_EQ(
      seen,
      (std::vector<std::tuple<std::string, std::string, int32_t>>{
          {"acme", "1", acme}, {"acme", "2", acme}, {"globex", "3", globex}, {"", "keyless", 2}}));
  // The copies went to the topic itself (the engine produces them within the commit).
  auto copies = driver->ReadOutput("keyed-in");
  ASSERT_EQ(copies.size(), 2u);
  EXPECT_EQ(copies[0].value, "1");
  EXPECT_EQ(copies[0].timestamp_ms, 10);
  EXPECT_EQ(copies[0].FindHeader("cm-rerouted-from"), std::to_string(wrong("acme")) + "/0");
  EXPECT_THAT(std::string(copies[1].FindHeader("cm-rerouted-from").value_or("")),
              ::testing::StartsWith(std::to_string(wrong("globex")) + "/"));
  EXPECT_TRUE(driver->ReadOutput(kDlq).empty());

  seen.clear();
  driver->PipeInputToPartition("keyed-in", wrong("acme"), "acme", "again", 14,
                               {{"cm-rerouted-from", "1/7"}});
  EXPECT_TRUE(seen.empty());
  EXPECT_TRUE(driver->ReadOutput("keyed-in").empty()) << "not bounced on";
  auto dead = driver->ReadOutput(kDlq);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].value, "again");
  EXPECT_THAT(std::string(dead[0].FindHeader("dlq-reason").value_or("")),
              HasSubstr("misrouted again after being re-produced from 1/7"));

  driver->PipeInputToPartition("loose-in", wrong("acme"), "acme", "as produced", 15);
  EXPECT_EQ(seen, (std::vector<std::tuple<std::string, std::string, int32_t>>{
                      {"acme", "as produced", wrong("acme")}}));
  EXPECT_TRUE(driver->ReadOutput("loose-in").empty());
}

TEST(TopologyTestDriverTest, ForwardToReachesOnlyTheNamedChild) {
  std::vector<std::string> audited;
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("router", Fn([](ProcessorContext& ctx, const Record& r) {
                      if (r.value == "left")
                        ctx.ForwardTo("left-sink", r);
                      else if (r.value == "right")
                        ctx.ForwardTo("right-sink", r);
                      else if (r.value == "audit")
                        ctx.ForwardTo("audit", r);
                      else
                        ctx.Forward(r);
                    }),
                    {"src"})
      .AddSink("left-sink", "left", {"router"})
      .AddSink("right-sink", "right", {"router"})
      .AddProcessor(
          "audit", Fn([&audited](ProcessorContext&, const Record& r) { audited.push_back(r.key); }),
          {"router"});
  Topology t = BuildOrDie(b, "route-app");
  auto driver = MakeDriver(t);

  driver->PipeInput("in", "1", "left", 1);
  driver->PipeInput("in", "2", "right", 2);
  driver->PipeInput("in", "3", "left", 3);
  driver->PipeInput("in", "4", "audit", 4);
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("left")), (KeyValues{{"1", "left"}, {"3", "left"}}));
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("right")), (KeyValues{{"2", "right"}}));
  EXPECT_EQ(audited, std::vector<std::string>{"4"});

  // Forward, by contrast, reaches every child.
  driver->PipeInput("in", "5", "all", 5);
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("left")), (KeyValues{{"5", "all"}}));
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("right")), (KeyValues{{"5", "all"}}));
  EXPECT_EQ(audited, (std::vector<std::string>{"4", "5"}));
}

TEST(TopologyTestDriverTest, ProgrammingErrorsInAProcessorDeadLetterTheRecord) {
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("p", Fn([](ProcessorContext& ctx, const Record& r) {
                      if (r.value == "bad-child")
                        ctx.ForwardTo("nowhere", r);
                      else if (r.value == "bad-store")
                        ctx.GetKeyValueStore("not-mine");
                      else
                        ctx.Forward(r);
                    }),
                    {"src"})
      .AddSink("out", "out", {"p"});
  Topology t = BuildOrDie(b, "mistakes-app");
  auto driver = MakeDriver(t);
  driver->PipeInput("in", "1", "bad-child", 1);
  driver->PipeInput("in", "2", "bad-store", 2);
  driver->PipeInput("in", "3", "fine", 3);
  auto dead = driver->ReadOutput(kDlq);
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_THAT(std::string(*dead[0].FindHeader("dlq-reason")), HasSubstr("not one of its children"));
  EXPECT_THAT(std::string(*dead[1].FindHeader("dlq-reason")),
              HasSubstr("not connected to store 'not-mine'"));
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("out")), (KeyValues{{"3", "fine"}}));
}

TEST(TopologyTestDriverTest, WritesOfARecordAProcessorFailsOnAreUndone) {
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("writer", Fn([](ProcessorContext& ctx, const Record& r) {
                      auto& store = ctx.GetKeyValueStore("kv");
                      store.Put(r.key, r.value);
                      store.Put("touched-by-" + r.value, "x");
                      ctx.Forward(r);
                    }),
                    {"src"})
      .AddProcessor("checker", Fn([](ProcessorContext&, const Record& r) {
                      if (r.value == "poison") throw std::runtime_error("poison downstream");
                    }),
                    {"writer"})
      .AddStateStore(Spec("kv", state::StoreType::kKeyValue), {"writer"});
  Topology t = BuildOrDie(b, "undo-app");
  auto driver = MakeDriver(t);
  driver->PipeInput("in", "k", "good", 1);
  driver->PipeInput("in", "k", "poison", 2);  // the writer's two writes must be undone
  auto* kv = driver->TaskFor("in", "k").state().key_value_store("kv");
  EXPECT_EQ(kv->Get("k"), "good");
  EXPECT_EQ(kv->Get("touched-by-good"), "x");
  EXPECT_EQ(kv->Get("touched-by-poison"), std::nullopt);
  auto dead = driver->ReadOutput(kDlq);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(std::string(*dead[0].FindHeader("dlq-source")), "undo-app/0_0/checker");
  driver->Commit();
  ASSERT_TRUE(driver->Restart().ok());
  EXPECT_EQ(driver->TaskFor("in", "k").state().key_value_store("kv")->Get("k"), "good");
}

// --- forwarding at commit (ProcessorContext::ForwardAtCommit) ------------------------------

std::map<std::string, std::string> AsMap(const std::vector<Record>& records) {
  std::map<std::string, std::string> out;
  for (const auto& r : records) {
    EXPECT_TRUE(out.emplace(r.key, r.value).second) << "two outputs for " << r.key;
  }
  return out;
}

// Kafka Streams' count() with its record cache: each key that changed is emitted once per
// commit with its latest count, and nothing before the commit. A restart loses what was not
// committed, deferred outputs with it, and the count goes on from the committed one.
TEST(TopologyTestDriverTest, CountEmitsTheLatestCountOfEachChangedKeyOncePerCommit) {
  TopologyBuilder b;
  counting::CountingTopologyOptions options;
  options.emit = counting::CountEmit::kLatestPerCommit;
  counting::AddCountingTopology(b, options);
  Topology t = BuildOrDie(b, "counting-app");
  auto driver = MakeDriver(t, 2);

  std::map<std::string, uint64_t> expected;
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    const std::string key = "k" + std::to_string(rng() % 20);
    ++expected[key];
    driver->PipeInput("count-input", key, "v", 1'000 + i);
  }
  EXPECT_TRUE(driver->ReadOutput("count-output").empty()) << "nothing before the commit";
  driver->Commit();
  auto first = driver->ReadOutput("count-output");
  std::map<std::string, std::string> want;
  for (const auto& [key, count] : expected) want[key] = std::to_string(count);
  EXPECT_EQ(AsMap(first), want);
  for (const auto& r : first) EXPECT_GE(r.timestamp_ms, 1'000) << r.key;

  driver->Commit();
  EXPECT_TRUE(driver->ReadOutput("count-output").empty()) << "nothing changed since";

  driver->PipeInput("count-input", "k3", "v", 2'000);
  driver->PipeInput("count-input", "k3", "v", 2'001);
  driver->PipeInput("count-input", "new", "v", 2'002);
  driver->Commit();
  EXPECT_EQ(AsMap(driver->ReadOutput("count-output")),
            (std::map<std::string, std::string>{{"k3", std::to_string(expected["k3"] + 2)},
                                                {"new", "1"}}));

  driver->PipeInput("count-input", "new", "v", 2'003);  // lost with the restart
  ASSERT_TRUE(driver->Restart().ok());
  driver->Commit();
  EXPECT_TRUE(driver->ReadOutput("count-output").empty());
  driver->PipeInput("count-input", "new", "v", 2'004);
  driver->Commit();
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("count-output")), (KeyValues{{"new", "2"}}));
  EXPECT_TRUE(driver->ReadOutput(kDlq).empty());
}

// A record a processor fails on takes back what it deferred, as it takes back its writes: a
// replaced key gets its earlier record back, a new key is forgotten. What a deferred record
// makes a child throw at the commit goes to the DLQ, and the other deferred records go on.
TEST(TopologyTestDriverTest, DeferredForwardsAreUndoneWithTheirRecordAndFailAtCommitToTheDlq) {
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("deferrer", Fn([](ProcessorContext& ctx, const Record& r) {
                      ctx.ForwardAtCommit(r);
                      if (r.value == "poison") throw std::runtime_error("poison here");
                    }),
                    {"src"})
      .AddProcessor("checker", Fn([](ProcessorContext& ctx, const Record& r) {
                      if (r.value == "boom") throw std::runtime_error("boom at commit");
                      ctx.GetKeyValueStore("seen").Put(r.key, r.value);
                      ctx.Forward(r);
                    }),
                    {"deferrer"})
      .AddSink("sink", "out", {"checker"})
      .AddStateStore(Spec("seen", state::StoreType::kKeyValue), {"checker"});
  Topology t = BuildOrDie(b, "defer-app");
  auto driver = MakeDriver(t);
  driver->PipeInput("in", "a", "a1", 1);
  driver->PipeInput("in", "a", "poison", 2);  // replaced a1, undone: a1 again
  driver->PipeInput("in", "p", "poison", 3);  // a new key, undone: forgotten
  driver->PipeInput("in", "b", "boom", 4);
  driver->PipeInput("in", "c", "c1", 5);
  driver->PipeInput("in", "c", "c2", 6);
  auto dead = driver->ReadOutput(kDlq);
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(std::string(*dead[0].FindHeader("dlq-source")), "defer-app/0_0/deferrer");
  EXPECT_TRUE(driver->ReadOutput("out").empty());

  driver->Commit();
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("out")), (KeyValues{{"a", "a1"}, {"c", "c2"}}));
  dead = driver->ReadOutput(kDlq);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].key, "b");
  EXPECT_EQ(std::string(*dead[0].FindHeader("dlq-source")), "defer-app/0_0/checker");
  EXPECT_THAT(std::string(*dead[0].FindHeader("dlq-reason")), HasSubstr("boom at commit"));
  // The child's writes at the commit were committed with it.
  ASSERT_TRUE(driver->Restart().ok());
  auto* seen = driver->TaskFor("in", "a").state().key_value_store("seen");
  EXPECT_EQ(seen->Get("a"), "a1");
  EXPECT_EQ(seen->Get("c"), "c2");
  EXPECT_EQ(seen->Get("b"), std::nullopt);
}

// After `cmstream replay`, a deferred record all of whose inputs were replays was published
// before the reset, and is dropped like any replayed output; one input that was not a replay
// makes it new.
TEST(TopologyTestDriverTest, ADeferredForwardOfReplayedInputsAloneIsDropped) {
  std::vector<std::pair<std::string, bool>> seen_at_commit;
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("deferrer",
                    Fn([](ProcessorContext& ctx, const Record& r) { ctx.ForwardAtCommit(r); }),
                    {"src"})
      .AddProcessor("watcher", Fn([&seen_at_commit](ProcessorContext& ctx, const Record& r) {
                      seen_at_commit.emplace_back(r.key, ctx.Replaying());
                      ctx.Forward(r);
                    }),
                    {"deferrer"})
      .AddSink("sink", "out", {"watcher"});
  Topology t = BuildOrDie(b, "defer-replay-app");
  auto driver = MakeDriver(t);
  const std::vector<Header> replayed{{"cm-replayed", "1"}};
  driver->PipeInput("in", "old", "1", 1, replayed);
  driver->PipeInput("in", "old", "2", 2, replayed);
  driver->PipeInput("in", "mixed", "1", 3, replayed);
  driver->PipeInput("in", "mixed", "2", 4);
  driver->PipeInput("in", "mixed", "3", 5, replayed);
  driver->Commit();
  EXPECT_EQ(seen_at_commit,
            (std::vector<std::pair<std::string, bool>>{{"old", true}, {"mixed", false}}));
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("out")), (KeyValues{{"mixed", "3"}}));
}

// Deferred records share the record cache's budget with the stores' buffered writes, as Kafka
// Streams' cache holds them: once they alone pass it, the thread (here the driver) commits and
// forwards them early, instead of holding records without bound until the commit interval.
TEST(TopologyTestDriverTest, DeferredRecordsOverTheCacheBudgetCommitEarly) {
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("deferrer",
                    Fn([](ProcessorContext& ctx, const Record& r) { ctx.ForwardAtCommit(r); }),
                    {"src"})
      .AddSink("sink", "out", {"deferrer"});
  Topology t = BuildOrDie(b, "defer-budget-app");
  TestDriverOptions options;
  options.cache_max_bytes = 16 << 10;
  auto created = TopologyTestDriver::Create(t, options);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto& driver = *created;

  const std::string value(100, 'v');
  driver->PipeInput("in", "same", value, 1);
  for (int i = 0; i < 1'000; ++i) driver->PipeInput("in", "same", value, 2 + i);
  EXPECT_TRUE(driver->ReadOutput("out").empty()) << "one key replaced in place stays in budget";

  std::map<std::string, int> outputs;
  for (int i = 0; i < 1'000; ++i) {
    driver->PipeInput("in", "k" + std::to_string(i), value, 2'000 + i);
    for (const auto& r : driver->ReadOutput("out")) ++outputs[r.key];
  }
  const size_t before_commit = outputs.size();
  // ~300 bytes charged a record: about 50 fit in 16 KiB, so most went out before the commit.
  EXPECT_GT(before_commit, 900u);
  driver->Commit();
  for (const auto& r : driver->ReadOutput("out")) ++outputs[r.key];
  EXPECT_EQ(outputs.size(), 1'001u);
  for (const auto& [key, n] : outputs) EXPECT_EQ(n, 1) << key << " forwarded twice";
}

TEST(TopologyTestDriverTest, StoreFailureFailsTheTaskAndIsNotDeadLettered) {
  // A store that cannot read or write is not the record's fault: the exception leaves the task
  // (the stream thread fails it), nothing goes to the DLQ, and since nothing of the record is
  // committed, processing it again after a restart counts it once.
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("writer", Fn([](ProcessorContext& ctx, const Record& r) {
                      auto& store = ctx.GetKeyValueStore("kv");
                      int64_t n = 0;
                      if (auto v = store.Get(r.key)) n = std::stoll(*v);
                      store.Put(r.key, std::to_string(n + 1));
                      if (r.value == "disk-full") throw state::StoreFailure("put failed: IO error");
                      ctx.Forward(r);
                    }),
                    {"src"})
      .AddSink("sink", "out", {"writer"})
      .AddStateStore(Spec("kv", state::StoreType::kKeyValue), {"writer"});
  Topology t = BuildOrDie(b, "store-fail-app");
  auto driver = MakeDriver(t);
  driver->PipeInput("in", "k", "ok", 1);
  driver->Commit();
  EXPECT_THROW(driver->PipeInput("in", "k", "disk-full", 2), state::StoreFailure);
  EXPECT_TRUE(driver->ReadOutput(kDlq).empty()) << "a store failure is not a poison record";
  EXPECT_EQ(driver->TaskFor("in", "k").dropped_to_dlq(), 0u);

  // The failed task's buffered writes are never committed; the next owner starts from the
  // last commit and processes the record again.
  ASSERT_TRUE(driver->Restart().ok());
  EXPECT_EQ(driver->TaskFor("in", "k").state().key_value_store("kv")->Get("k"), "1");
  driver->ReadOutput("out");
  driver->PipeInput("in", "k", "ok-again", 2);
  EXPECT_EQ(driver->TaskFor("in", "k").state().key_value_store("kv")->Get("k"), "2");
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("out")), (KeyValues{{"k", "ok-again"}}));
}

TEST(TopologyTestDriverTest, StoreFailureInAPunctuatorFailsTheTask) {
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("ticker",
                    Fn([](ProcessorContext&, const Record&) {},
                       [](ProcessorContext& ctx) {
                         ctx.Schedule(10ms, PunctuationType::kWallClockTime, [](int64_t) {
                           throw state::StoreFailure("scan failed: Corruption");
                         });
                       }),
                    {"src"});
  Topology t = BuildOrDie(b, "tick-fail-app");
  auto driver = MakeDriver(t);
  EXPECT_THROW(driver->AdvanceWallClock(20), state::StoreFailure);
  EXPECT_TRUE(driver->ReadOutput(kDlq).empty());
}

TEST(TopologyTestDriverTest, PunctuatorsMayScheduleMoreAndFailuresAreDeadLettered) {
  std::vector<std::string> fired;
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("p",
                    Fn([](ProcessorContext&, const Record&) {},
                       [&fired](ProcessorContext& ctx) {
                         // Each firing schedules another punctuation: the list grows while it is
                         // being walked.
                         ctx.Schedule(
                             10ms, PunctuationType::kWallClockTime, [&fired, &ctx](int64_t ts) {
                               fired.push_back("outer@" + std::to_string(ts));
                               ctx.Schedule(1000ms, PunctuationType::kWallClockTime,
                                            [](int64_t) { throw std::runtime_error("boom"); });
                             });
                       }),
                    {"src"});
  Topology t = BuildOrDie(b, "punct-app");
  auto driver = MakeDriver(t);
  for (int i = 0; i < 20; ++i) driver->AdvanceWallClock(10);
  EXPECT_EQ(fired.size(), 20u);
  driver->AdvanceWallClock(1000);
  auto dead = driver->ReadOutput(kDlq);
  ASSERT_FALSE(dead.empty());
  EXPECT_THAT(std::string(*dead[0].FindHeader("dlq-reason")), HasSubstr("punctuator threw: boom"));
}

TEST(TopologyTestDriverTest, RecordsAWallClockPunctuatorRepartitionsAreDelivered) {
  std::vector<std::string> received;
  TopologyBuilder b;
  b.AddSource("src", {"in"})
      .AddProcessor("emitter",
                    Fn([](ProcessorContext&, const Record&) {},
                       [](ProcessorContext& ctx) {
                         ctx.Schedule(100ms, PunctuationType::kWallClockTime, [&ctx](int64_t ts) {
                           Record r;
                           r.key = "tick";
                           r.value = std::to_string(ts);
                           r.timestamp_ms = ts;
                           ctx.Forward(r);
                         });
                       }),
                    {"src"})
      .AddRepartitionSink("to-ticks", "ticks", {"emitter"})
      .AddRepartitionSource("ticks-src", "ticks")
      .AddProcessor("receiver", Fn([&received](ProcessorContext&, const Record& r) {
                      received.push_back(r.value);
                    }),
                    {"ticks-src"});
  Topology t = BuildOrDie(b, "tick-app");
  auto driver = MakeDriver(t);
  driver->AdvanceWallClock(100);
  EXPECT_EQ(received, std::vector<std::string>{"100"});
}

// --- window store --------------------------------------------------------------------------

TEST(TopologyTestDriverTest, WindowStoreBucketsAndRejectsLateRecords) {
  state::WindowSpec window;
  window.size_ms = 60'000;
  window.grace_ms = 5'000;
  TopologyBuilder b;
  b.AddSource("src", {"clicks"})
      .AddProcessor("windowed-count", Fn([](ProcessorContext& ctx, const Record& r) {
                      auto& store = ctx.GetWindowStore("clicks-per-minute");
                      const auto& spec = store.spec();
                      int64_t start = spec.WindowStart(r.timestamp_ms);
                      if (spec.IsClosed(start, ctx.StreamTime())) {
                        ctx.SendToDlq(r, "late: window " + std::to_string(start) + " is closed");
                        return;
                      }
                      int64_t n = 0;
                      if (auto v = store.Get(r.key, start)) n = std::stoll(*v);
                      store.Put(r.key, start, std::to_string(++n));
                      Record out;
                      out.key = r.key;
                      out.value = std::to_string(start) + ":" + std::to_string(n);
                      out.timestamp_ms = r.timestamp_ms;
                      ctx.Forward(out);
                    }),
                    {"src"})
      .AddSink("sink", "clicks-out", {"windowed-count"})
      .AddStateStore(Spec("clicks-per-minute", state::StoreType::kWindow, window),
                     {"windowed-count"});
  Topology t = BuildOrDie(b, "win-app");
  auto driver = MakeDriver(t);

  driver->PipeInput("clicks", "k", "", 0);        // [0, 60000)
  driver->PipeInput("clicks", "k", "", 59'999);   // last ms of the first window
  driver->PipeInput("clicks", "k", "", 60'000);   // exactly on the boundary: the later window
  driver->PipeInput("clicks", "k", "", 1'000);    // late but within grace (stream time 60000)
  driver->PipeInput("clicks", "k", "", 64'999);   // stream time 64999
  driver->PipeInput("clicks", "k", "", 2'000);    // 60000 + 5000 > 64999: still open
  driver->PipeInput("clicks", "k", "", 65'000);   // stream time 65000: window 0 closes
  driver->PipeInput("clicks", "k", "", 3'000);    // too late -> DLQ
  driver->PipeInput("clicks", "k", "", 120'000);  // a third window
  driver->PipeInput("clicks", "other", "", 119'999);

  EXPECT_EQ(AsKeyValues(driver->ReadOutput("clicks-out")), (KeyValues{{"k", "0:1"},
                                                                      {"k", "0:2"},
                                                                      {"k", "60000:1"},
                                                                      {"k", "0:3"},
                                                                      {"k", "60000:2"},
                                                                      {"k", "0:4"},
                                                                      {"k", "60000:3"},
                                                                      {"k", "120000:1"},
                                                                      {"other", "60000:1"}}));
  auto dlq = driver->ReadOutput(kDlq);
  ASSERT_EQ(dlq.size(), 1u);
  EXPECT_EQ(dlq[0].timestamp_ms, 3'000);
  ASSERT_TRUE(dlq[0].FindHeader("dlq-reason").has_value());
  EXPECT_THAT(std::string(*dlq[0].FindHeader("dlq-reason")), HasSubstr("late"));
  EXPECT_EQ(driver->Task(0, 0).dropped_to_dlq(), 1u);

  auto* store = driver->Task(0, 0).state().window_store("clicks-per-minute");
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Get("k", 0), "4");
  EXPECT_EQ(store->Get("k", 60'000), "3");
  EXPECT_EQ(store->Get("k", 120'000), "1");
  EXPECT_EQ(store->Get("other", 60'000), "1");
  EXPECT_FALSE(store->Get("k", 1'000).has_value());
  std::vector<std::pair<int64_t, std::string>> fetched;
  store->Fetch("k", 0, 180'000, [&](std::string_view, int64_t start, std::string_view v) {
    fetched.emplace_back(start, std::string(v));
    return true;
  });
  EXPECT_EQ(fetched, (std::vector<std::pair<int64_t, std::string>>{
                         {0, "4"}, {60'000, "3"}, {120'000, "1"}}));
}

// --- timer store ---------------------------------------------------------------------------

// Records with a value schedule timer <key> due at <value>; every record advances stream time,
// and a stream-time punctuator forwards the due timers to "fired" (key = id, value = due).
Topology TimerTopology() {
  TopologyBuilder b;
  b.AddSource("src", {"timers-in"})
      .AddProcessor("scheduler",
                    Fn(
                        [](ProcessorContext& ctx, const Record& r) {
                          if (r.value.empty()) return;  // a tick
                          ctx.GetTimerStore("timers").Schedule(r.key, std::stoll(r.value),
                                                               "payload-" + r.key);
                        },
                        [](ProcessorContext& ctx) {
                          ProcessorContext* c = &ctx;
                          ctx.Schedule(10ms, PunctuationType::kStreamTime, [c](int64_t now) {
                            auto& timers = c->GetTimerStore("timers");
                            for (const auto& timer : timers.PopDue(now, 100)) {
                              Record out;
                              out.key = timer.id;
                              out.value = std::to_string(timer.due_ms) + "/" + timer.payload;
                              out.timestamp_ms = now;
                              c->Forward(out);
                            }
                          });
                        }),
                    {"src"})
      .AddSink("sink", "fired", {"scheduler"})
      .AddStateStore(Spec("timers", state::StoreType::kTimer), {"scheduler"});
  return BuildOrDie(b, "timer-app");
}

TEST(TopologyTestDriverTest, TimersFireInDueOrderAndSurviveRestart) {
  Topology t = TimerTopology();
  auto driver = MakeDriver(t);
  driver->PipeInput("timers-in", "t-c", "300", 0);
  driver->PipeInput("timers-in", "t-a", "100", 1);
  driver->PipeInput("timers-in", "t-d", "1000", 2);
  driver->PipeInput("timers-in", "t-b", "200", 3);
  driver->PipeInput("timers-in", "t-a2", "100", 4);  // same due time as t-a: ordered by id
  EXPECT_TRUE(driver->ReadOutput("fired").empty());

  driver->PipeInput("timers-in", "tick", "", 250);
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("fired")), (KeyValues{{"t-a", "100/payload-t-a"},
                                                                 {"t-a2", "100/payload-t-a2"},
                                                                 {"t-b", "200/payload-t-b"}}));
  driver->Commit();

  // Scheduled after the last commit: lost in the restart, like any store write.
  driver->PipeInput("timers-in", "t-e", "260", 251);
  ASSERT_TRUE(driver->Restart().ok());

  auto* timers = driver->Task(0, 0).state().timer_store("timers");
  ASSERT_NE(timers, nullptr);
  EXPECT_FALSE(timers->Get("t-e").has_value());
  EXPECT_FALSE(timers->Get("t-a").has_value()) << "fired timers stay fired";
  ASSERT_TRUE(timers->Get("t-c").has_value());
  EXPECT_EQ(timers->NextDue(), 300);

  driver->PipeInput("timers-in", "tick", "", 350);
  driver->PipeInput("timers-in", "tick", "", 400);
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("fired")), (KeyValues{{"t-c", "300/payload-t-c"}}));
  driver->PipeInput("timers-in", "tick", "", 999);
  driver->PipeInput("timers-in", "tick", "", 1'100);
  driver->PipeInput("timers-in", "tick", "", 1'200);
  EXPECT_EQ(AsKeyValues(driver->ReadOutput("fired")), (KeyValues{{"t-d", "1000/payload-t-d"}}));
  EXPECT_FALSE(timers->NextDue().has_value());
}

}  // namespace
}  // namespace cm::topology
