#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "topology/processor/processor.h"
#include "topology/processor/topology.h"

namespace cm::topology {
namespace {

using ::testing::HasSubstr;

class NoopProcessor final : public Processor {
 public:
  void Process(const Record& record) override { (void)record; }
};

ProcessorSupplier Noop() {
  return [] { return std::make_unique<NoopProcessor>(); };
}

// StoreSpec by field: designated initializers that skip a field trip -Wmissing-field-initializers.
state::StoreSpec KeyValueSpec(std::string name, bool logged = true) {
  state::StoreSpec spec;
  spec.name = std::move(name);
  spec.type = state::StoreType::kKeyValue;
  spec.logged = logged;
  return spec;
}

state::StoreSpec WindowSpecOf(std::string name, int64_t size_ms, int64_t grace_ms) {
  state::StoreSpec spec;
  spec.name = std::move(name);
  spec.type = state::StoreType::kWindow;
  spec.window.size_ms = size_ms;
  spec.window.grace_ms = grace_ms;
  return spec;
}

// source(<p>-in) -> <p>-proc -> sink(<p>-out)
void AddChain(TopologyBuilder& b, const std::string& p) {
  b.AddSource(p + "-source", {p + "-in"})
      .AddProcessor(p + "-proc", Noop(), {p + "-source"})
      .AddSink(p + "-sink", p + "-out", {p + "-proc"});
}

// Asserts Build fails with InvalidArgument and a message naming every offender.
void ExpectRejected(const TopologyBuilder& b, const std::vector<std::string>& offenders) {
  auto built = b.Build("app");
  ASSERT_FALSE(built.ok()) << "Build accepted an invalid topology";
  EXPECT_EQ(built.status().code(), state::Status::Code::kInvalidArgument)
      << built.status().ToString();
  for (const auto& offender : offenders) {
    EXPECT_THAT(built.status().message(), HasSubstr(offender));
  }
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

size_t IndexOf(const std::vector<std::string>& v, const std::string& s) {
  return static_cast<size_t>(std::find(v.begin(), v.end(), s) - v.begin());
}

TEST(TopologyBuilderTest, ValidChainBuilds) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddStateStore(KeyValueSpec("a-store"), {"a-proc"});
  auto built = b.Build("app");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const Topology& t = built.value();
  EXPECT_EQ(t.application_id(), "app");
  ASSERT_EQ(t.subtopologies().size(), 1u);
  EXPECT_EQ(t.node("a-source").children, std::vector<std::string>{"a-proc"});
  EXPECT_EQ(t.node("a-proc").children, std::vector<std::string>{"a-sink"});
  EXPECT_EQ(t.node("a-proc").stores, std::vector<std::string>{"a-store"});
  EXPECT_TRUE(t.node("a-sink").children.empty());
  EXPECT_EQ(t.SourceOfTopic("a-in"), &t.node("a-source"));
  EXPECT_EQ(t.SourceOfTopic("a-out"), nullptr);
  EXPECT_TRUE(t.InternalTopics().empty());
}

TEST(TopologyBuilderTest, RejectsEmptyApplicationId) {
  TopologyBuilder b;
  AddChain(b, "a");
  auto built = b.Build("");
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.status().code(), state::Status::Code::kInvalidArgument);
}

TEST(TopologyBuilderTest, RejectsUnknownParent) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddProcessor("orphan-proc", Noop(), {"a-source", "no-such-parent"});
  ExpectRejected(b, {"orphan-proc", "no-such-parent"});
}

TEST(TopologyBuilderTest, RejectsUnknownParentOfSink) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddSink("lost-sink", "lost-out", {"missing-proc"});
  ExpectRejected(b, {"lost-sink", "missing-proc"});
}

TEST(TopologyBuilderTest, RejectsCycleBetweenProcessors) {
  TopologyBuilder b;
  b.AddSource("source", {"in"})
      .AddProcessor("loop-first", Noop(), {"source", "loop-second"})
      .AddProcessor("loop-second", Noop(), {"loop-first"})
      .AddSink("sink", "out", {"loop-second"});
  ExpectRejected(b, {"cycle", "loop-first", "loop-second"});
}

TEST(TopologyBuilderTest, RejectsProcessorThatIsItsOwnParent) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddProcessor("selfish", Noop(), {"a-source", "selfish"});
  ExpectRejected(b, {"cycle", "selfish"});
}

TEST(TopologyBuilderTest, RejectsStoreUsedByNoProcessor) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddStateStore(KeyValueSpec("lonely-store"), {});
  ExpectRejected(b, {"lonely-store"});
}

TEST(TopologyBuilderTest, RejectsStoreNamingUnknownProcessor) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddStateStore(KeyValueSpec("some-store"), {"a-proc", "ghost-proc"});
  ExpectRejected(b, {"some-store", "ghost-proc"});
}

TEST(TopologyBuilderTest, RejectsStoreConnectedToSinkOrSource) {
  {
    TopologyBuilder b;
    AddChain(b, "a");
    b.AddStateStore(KeyValueSpec("sink-store"), {"a-sink"});
    ExpectRejected(b, {"sink-store", "a-sink"});
  }
  {
    TopologyBuilder b;
    AddChain(b, "a");
    b.AddStateStore(KeyValueSpec("source-store"), {"a-source"});
    ExpectRejected(b, {"source-store", "a-source"});
  }
}

TEST(TopologyBuilderTest, RejectsStoreDefinedTwice) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddStateStore(KeyValueSpec("twice"), {"a-proc"})
      .AddStateStore(KeyValueSpec("twice"), {"a-proc"});
  ExpectRejected(b, {"twice"});
}

TEST(TopologyBuilderTest, RejectsWindowStoreWithoutPositiveSize) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddStateStore(WindowSpecOf("flat-window", 0, 0), {"a-proc"});
  ExpectRejected(b, {"flat-window"});
}

TEST(TopologyBuilderTest, RejectsDuplicateNodeNames) {
  {
    TopologyBuilder b;
    AddChain(b, "a");
    b.AddProcessor("a-proc", Noop(), {"a-source"});
    ExpectRejected(b, {"a-proc"});
  }
  {  // a sink and a source may not share a name either
    TopologyBuilder b;
    AddChain(b, "a");
    b.AddSource("a-sink", {"other-in"});
    ExpectRejected(b, {"a-sink"});
  }
}

TEST(TopologyBuilderTest, RejectsSinkUsedAsParent) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddProcessor("after-sink", Noop(), {"a-sink"});
  ExpectRejected(b, {"after-sink", "a-sink"});
}

TEST(TopologyBuilderTest, RejectsSourceWithNoTopic) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddSource("empty-source", {}).AddProcessor("empty-proc", Noop(), {"empty-source"});
  ExpectRejected(b, {"empty-source"});
}

TEST(TopologyBuilderTest, RejectsTopicReadByTwoSources) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddSource("second-reader", {"a-in"}).AddProcessor("second-proc", Noop(), {"second-reader"});
  ExpectRejected(b, {"a-in", "a-source", "second-reader"});
}

TEST(TopologyBuilderTest, RejectsProcessorWithoutSupplier) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddProcessor("no-supplier", ProcessorSupplier{}, {"a-source"});
  ExpectRejected(b, {"no-supplier"});
}

TEST(TopologyBuilderTest, RejectsProcessorWithoutParent) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddProcessor("parentless", Noop(), {});
  ExpectRejected(b, {"parentless"});
}

TEST(TopologyBuilderTest, RejectsSinkWithoutTopic) {
  TopologyBuilder b;
  AddChain(b, "a");
  b.AddSink("nowhere-sink", "", {"a-proc"});
  ExpectRejected(b, {"nowhere-sink"});
}

TEST(TopologyBuilderTest, DisconnectedChainsAreSeparateSubTopologies) {
  TopologyBuilder b;
  // Added out of order on purpose: Build must sort parents before children.
  b.AddSink("y-sink", "y-out", {"y-proc"})
      .AddProcessor("y-proc", Noop(), {"y-source"})
      .AddSource("y-source", {"y-in"});
  AddChain(b, "x");
  b.AddStateStore(KeyValueSpec("x-store"), {"x-proc"});
  b.AddStateStore(KeyValueSpec("y-store"), {"y-proc"});
  auto built = b.Build("app");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const Topology& t = built.value();
  ASSERT_EQ(t.subtopologies().size(), 2u);

  for (const std::string p : {"x", "y"}) {
    SCOPED_TRACE(p);
    auto id = t.SubTopologyOfSource(p + "-in");
    ASSERT_TRUE(id.has_value());
    const SubTopology& sub = t.subtopologies().at(static_cast<size_t>(*id));
    EXPECT_EQ(sub.id, *id);
    EXPECT_EQ(sub.nodes.size(), 3u);
    EXPECT_LT(IndexOf(sub.nodes, p + "-source"), IndexOf(sub.nodes, p + "-proc"));
    EXPECT_LT(IndexOf(sub.nodes, p + "-proc"), IndexOf(sub.nodes, p + "-sink"));
    EXPECT_LT(IndexOf(sub.nodes, p + "-sink"), sub.nodes.size());
    EXPECT_EQ(sub.source_topics, std::vector<std::string>{p + "-in"});
    EXPECT_EQ(sub.sink_topics, std::vector<std::string>{p + "-out"});
    ASSERT_EQ(sub.stores.size(), 1u);
    EXPECT_EQ(sub.stores[0].name, p + "-store");
  }
  EXPECT_NE(*t.SubTopologyOfSource("x-in"), *t.SubTopologyOfSource("y-in"));
  EXPECT_FALSE(t.SubTopologyOfSource("x-out").has_value());
}

TEST(TopologyBuilderTest, ChainsSharingAStoreAreOneSubTopology) {
  TopologyBuilder b;
  AddChain(b, "x");
  AddChain(b, "y");
  b.AddStateStore(KeyValueSpec("shared"), {"x-proc", "y-proc"});
  auto built = b.Build("app");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const Topology& t = built.value();
  ASSERT_EQ(t.subtopologies().size(), 1u);
  const SubTopology& sub = t.subtopologies()[0];
  EXPECT_EQ(sub.nodes.size(), 6u);
  EXPECT_TRUE(Contains(sub.source_topics, "x-in"));
  EXPECT_TRUE(Contains(sub.source_topics, "y-in"));
  EXPECT_EQ(sub.source_topics.size(), 2u);
  EXPECT_EQ(sub.sink_topics.size(), 2u);
  ASSERT_EQ(sub.stores.size(), 1u) << "a shared store is listed once";
  EXPECT_EQ(sub.stores[0].name, "shared");
  EXPECT_EQ(t.node("x-proc").stores, std::vector<std::string>{"shared"});
  EXPECT_EQ(t.node("y-proc").stores, std::vector<std::string>{"shared"});
}

TEST(TopologyBuilderTest, AConnectedProcessorReadsAnotherProcessorsStoreInItsSubTopology) {
  TopologyBuilder b;
  AddChain(b, "x");
  AddChain(b, "y");
  b.AddStateStore(KeyValueSpec("x-store"), {"x-proc"})
      .ConnectProcessorAndStateStores("y-proc", {"x-store"});
  auto built = b.Build("app");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  ASSERT_EQ(built->subtopologies().size(), 1u);
  EXPECT_EQ(built->subtopologies()[0].stores.size(), 1u);
  EXPECT_EQ(built->node("y-proc").stores, std::vector<std::string>{"x-store"});

  TopologyBuilder unknown_store;
  AddChain(unknown_store, "x");
  unknown_store.ConnectProcessorAndStateStores("x-proc", {"nowhere"});
  ExpectRejected(unknown_store, {"x-proc", "nowhere"});
  TopologyBuilder unknown_processor;
  AddChain(unknown_processor, "x");
  unknown_processor.AddStateStore(KeyValueSpec("s"), {"x-proc"})
      .ConnectProcessorAndStateStores("ghost", {"s"});
  ExpectRejected(unknown_processor, {"ghost"});
}

TEST(TopologyBuilderTest, SubTopologiesAreNumberedInTheOrderTheirSourcesWereAdded) {
  // Not by name: an application added later never renumbers the ones before it.
  TopologyBuilder b;
  AddChain(b, "zulu");
  AddChain(b, "alpha");
  auto built = b.Build("app");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  EXPECT_EQ(built->SubTopologyOfSource("zulu-in"), 0);
  EXPECT_EQ(built->SubTopologyOfSource("alpha-in"), 1);
}

TEST(TopologyBuilderTest, ProcessorWithTwoSourcesJoinsThem) {
  TopologyBuilder b;
  b.AddSource("left", {"left-in"})
      .AddSource("right", {"right-in", "right-in-2"})
      .AddProcessor("merge", Noop(), {"left", "right"})
      .AddSink("sink", "out", {"merge"});
  auto built = b.Build("app");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  ASSERT_EQ(built->subtopologies().size(), 1u);
  EXPECT_EQ(built->subtopologies()[0].source_topics.size(), 3u);
  EXPECT_EQ(*built->SubTopologyOfSource("right-in-2"), 0);
}

TopologyBuilder RepartitionBuilder() {
  TopologyBuilder b;
  b.AddSource("words-source", {"words"})
      .AddProcessor("rekey", Noop(), {"words-source"})
      .AddRepartitionSink("to-by-word", "by-word", {"rekey"})
      .AddRepartitionSource("from-by-word", "by-word")
      .AddProcessor("count", Noop(), {"from-by-word"})
      .AddSink("count-sink", "word-counts", {"count"})
      .AddStateStore(KeyValueSpec("word-store"), {"count"});
  return b;
}

TEST(TopologyBuilderTest, RepartitionSplitsIntoSubTopologies) {
  auto built = RepartitionBuilder().Build("wc");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const Topology& t = built.value();
  const std::string topic = "wc-by-word-repartition";
  EXPECT_EQ(Topology::RepartitionTopic("wc", "by-word"), topic);
  EXPECT_EQ(t.InternalTopics(), std::vector<std::string>{topic});
  EXPECT_EQ(t.node("to-by-word").type, NodeType::kSink);
  EXPECT_EQ(t.node("to-by-word").topics, std::vector<std::string>{topic});
  EXPECT_EQ(t.node("from-by-word").type, NodeType::kSource);
  EXPECT_EQ(t.node("from-by-word").topics, std::vector<std::string>{topic});

  ASSERT_EQ(t.subtopologies().size(), 2u);
  auto upstream = t.SubTopologyOfSource("words");
  auto downstream = t.SubTopologyOfSource(topic);
  ASSERT_TRUE(upstream && downstream);
  ASSERT_NE(*upstream, *downstream);
  const SubTopology& up = t.subtopologies().at(static_cast<size_t>(*upstream));
  const SubTopology& down = t.subtopologies().at(static_cast<size_t>(*downstream));
  EXPECT_EQ(up.source_topics, std::vector<std::string>{"words"});
  EXPECT_EQ(up.sink_topics, std::vector<std::string>{topic});
  EXPECT_TRUE(up.stores.empty());
  EXPECT_TRUE(Contains(up.nodes, "rekey"));
  EXPECT_FALSE(Contains(up.nodes, "count"));
  EXPECT_EQ(down.source_topics, std::vector<std::string>{topic});
  EXPECT_EQ(down.sink_topics, std::vector<std::string>{"word-counts"});
  ASSERT_EQ(down.stores.size(), 1u);
  EXPECT_EQ(down.stores[0].name, "word-store");
  EXPECT_FALSE(Contains(down.nodes, "rekey"));

  // The application id names the internal topic.
  auto other = RepartitionBuilder().Build("other-app");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->InternalTopics(), std::vector<std::string>{"other-app-by-word-repartition"});
}

TEST(TopologyBuilderTest, RepartitionSourceSharingAStoreWithUpstreamStaysTogether) {
  TopologyBuilder b = RepartitionBuilder();
  b.AddStateStore(KeyValueSpec("both"), {"rekey", "count"});
  auto built = b.Build("wc");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  EXPECT_EQ(built->subtopologies().size(), 1u);
}

TEST(TopologyBuilderTest, DescribeListsNodesStoresAndTopics) {
  TopologyBuilder b = RepartitionBuilder();
  b.AddStateStore(WindowSpecOf("word-windows", 60'000, 5'000), {"count"})
      .AddStateStore(KeyValueSpec("scratch", /*logged=*/false), {"rekey"});
  auto built = b.Build("wc");
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const Topology& t = built.value();
  nlohmann::json d = t.Describe();

  EXPECT_EQ(d.at("applicationId"), "wc");
  const auto& subs = d.at("subtopologies");
  ASSERT_TRUE(subs.is_array());
  ASSERT_EQ(subs.size(), 2u);

  std::vector<std::string> all_nodes;
  for (const auto& sub : subs) {
    int id = sub.at("id").get<int>();
    EXPECT_EQ(sub.at("commitTopic"), "wc-" + std::to_string(id) + "-commits");
    EXPECT_EQ(sub.at("commitTopic"), Topology::CommitTopic("wc", id));
    for (const auto& node : sub.at("nodes"))
      all_nodes.push_back(node.at("name").get<std::string>());
  }
  std::sort(all_nodes.begin(), all_nodes.end());
  EXPECT_EQ(all_nodes, (std::vector<std::string>{"count", "count-sink", "from-by-word", "rekey",
                                                 "to-by-word", "words-source"}));

  int down = *t.SubTopologyOfSource("wc-by-word-repartition");
  int up = *t.SubTopologyOfSource("words");
  const nlohmann::json* down_json = nullptr;
  const nlohmann::json* up_json = nullptr;
  for (const auto& sub : subs) {
    if (sub.at("id") == down) down_json = &sub;
    if (sub.at("id") == up) up_json = &sub;
  }
  ASSERT_NE(down_json, nullptr);
  ASSERT_NE(up_json, nullptr);
  EXPECT_EQ((*down_json).at("sourceTopics"), nlohmann::json::array({"wc-by-word-repartition"}));
  EXPECT_EQ((*down_json).at("sinkTopics"), nlohmann::json::array({"word-counts"}));
  EXPECT_EQ((*up_json).at("sourceTopics"), nlohmann::json::array({"words"}));
  EXPECT_EQ((*up_json).at("sinkTopics"), nlohmann::json::array({"wc-by-word-repartition"}));

  // Node details.
  for (const auto& node : (*down_json).at("nodes")) {
    if (node.at("name") == "count") {
      EXPECT_EQ(node.at("type"), "processor");
      EXPECT_EQ(node.at("parents"), nlohmann::json::array({"from-by-word"}));
      EXPECT_EQ(node.at("children"), nlohmann::json::array({"count-sink"}));
      auto stores = node.at("stores").get<std::vector<std::string>>();
      std::sort(stores.begin(), stores.end());
      EXPECT_EQ(stores, (std::vector<std::string>{"word-store", "word-windows"}));
    } else if (node.at("name") == "from-by-word") {
      EXPECT_EQ(node.at("type"), "source");
      EXPECT_EQ(node.at("topics"), nlohmann::json::array({"wc-by-word-repartition"}));
    } else if (node.at("name") == "count-sink") {
      EXPECT_EQ(node.at("type"), "sink");
      EXPECT_EQ(node.at("topics"), nlohmann::json::array({"word-counts"}));
    }
  }

  // Stores with their changelogs.
  std::map<std::string, nlohmann::json> stores;
  for (const auto& sub : subs) {
    for (const auto& s : sub.at("stores")) stores[s.at("name").get<std::string>()] = s;
  }
  ASSERT_EQ(stores.size(), 3u);
  EXPECT_EQ(stores.at("word-store").at("type"), "key-value");
  EXPECT_EQ(stores.at("word-store").at("changelog"), "wc-word-store-changelog");
  EXPECT_EQ(Topology::ChangelogTopic("wc", "word-store"), "wc-word-store-changelog");
  EXPECT_EQ(stores.at("word-windows").at("type"), "window");
  EXPECT_EQ(stores.at("word-windows").at("changelog"), "wc-word-windows-changelog");
  EXPECT_EQ(stores.at("word-windows").at("windowSizeMs"), 60'000);
  EXPECT_EQ(stores.at("word-windows").at("graceMs"), 5'000);
  // An unlogged store has no changelog topic.
  EXPECT_EQ(stores.at("scratch").at("changelog"), "");

  // The store sits in the sub-topology of its processor.
  bool found = false;
  for (const auto& s : (*up_json).at("stores")) found |= s.at("name") == "scratch";
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace cm::topology
