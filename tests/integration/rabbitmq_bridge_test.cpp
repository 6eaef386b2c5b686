// The RabbitMQ bridge against the real RabbitMQ of ops/services and an in-process embedded
// Kafka broker: events arrive keyed by organizationId on the key's partition; malformed
// messages go to the DLQ with a reason and are acked; nothing is acked while Kafka cannot
// acknowledge it; the bridge comes back after RabbitMQ closes its connection; two bridges
// share one queue. Every test has its own exchange, queue and topics.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "amqp_publisher.h"
#include "bridges/rabbitmq/amqp_bridge.h"
#include "child_process.h"
#include "in_process.h"
#include "kafka_clients.h"
#include "topology/kafka/partitioner.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::WaitFor;

constexpr int kPartitions = 4;

class RabbitmqBridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = testing::TestBroker::Start();
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
    exchange_ = testing::UniqueName("it-bridge-ex");
    queue_ = testing::UniqueName("it-bridge-q");
    topic_ = testing::UniqueName("it-bridge-events");
    dlq_ = testing::UniqueName("it-bridge-dlq");
    ASSERT_TRUE(broker_->CreateTopic(topic_, kPartitions).ok());
    ASSERT_TRUE(broker_->CreateTopic(dlq_, 1).ok());
    publisher_ = std::make_unique<testing::AmqpPublisher>();
    publisher_->DeclareQueue(exchange_, queue_, rabbitmq::DefaultRoutingKeys());
  }

  void TearDown() override {
    bridges_.clear();  // stops them
    if (publisher_) publisher_->Delete(exchange_, queue_);
  }

  rabbitmq::AmqpBridgeOptions Options() const {
    rabbitmq::AmqpBridgeOptions o;
    o.amqp_url = testing::RabbitmqUrl();
    o.exchange = exchange_;
    o.queue = queue_;
    o.bootstrap_servers = broker_->bootstrap_servers();
    o.topic = topic_;
    o.dlq_topic = dlq_;
    o.prefetch = 100;
    o.shutdown_timeout = 2s;
    o.connection_name = testing::UniqueName("it-bridge-conn");
    return o;
  }

  rabbitmq::AmqpBridge& StartBridge(const rabbitmq::AmqpBridgeOptions& options) {
    bridges_.push_back(std::make_unique<rabbitmq::AmqpBridge>(options));
    EXPECT_TRUE(bridges_.back()->Start().ok());
    return *bridges_.back();
  }

  static std::string Event(const std::string& id, const std::string& org,
                           const std::string& type = "api.call") {
    return json{{"eventId", id}, {"organizationId", org}, {"userId", "u"}, {"eventType", type}}
        .dump();
  }

  // Publishes `n` events (ids prefix-0.., organizations org-0..org-6) under their event types.
  std::vector<std::pair<std::string, std::string>> Events(const std::string& prefix, int n) {
    static const char* kTypes[] = {"api.call",        "document.created", "storage.upload",
                                   "presence.joined", "compute.used",     "team.member_added"};
    std::vector<std::pair<std::string, std::string>> out;
    for (int i = 0; i < n; ++i) {
      std::string type = kTypes[i % 6];
      out.emplace_back(type,
                       Event(prefix + std::to_string(i), "org-" + std::to_string(i % 7), type));
    }
    return out;
  }

  // Every message of the target topic by eventId, read until `count` distinct ids arrived.
  std::map<std::string, testing::TopicReader::Message> ReadEvents(size_t count) {
    testing::TopicReader reader(broker_->bootstrap_servers(), topic_, kPartitions);
    std::map<std::string, testing::TopicReader::Message> seen;
    WaitFor(
        [&] {
          for (auto& m : reader.Poll()) {
            json j = json::parse(m.value);
            seen[j.value("eventId", j.value("id", ""))] = m;
          }
          return seen.size() >= count;
        },
        60s);
    return seen;
  }

  std::unique_ptr<testing::TestBroker> broker_;
  std::string exchange_, queue_, topic_, dlq_;
  std::unique_ptr<testing::AmqpPublisher> publisher_;
  std::vector<std::unique_ptr<rabbitmq::AmqpBridge>> bridges_;
};

TEST_F(RabbitmqBridgeTest, DeliversEveryEventKeyedByOrganizationToThePartitionOfItsKey) {
  auto& bridge = StartBridge(Options());
  auto events = Events("e", 500);
  // CloudEvents carry the organization in data (or as an extension attribute).
  for (int i = 0; i < 20; ++i) {
    json ce = {{"specversion", "1.0"},
               {"id", "ce" + std::to_string(i)},
               {"type", "api.call"},
               {"source", "/api"},
               {"data", {{"organizationId", "org-ce" + std::to_string(i % 3)}}}};
    events.emplace_back("api.call", ce.dump());
  }
  publisher_->PublishAll(exchange_, events);
  auto seen = ReadEvents(events.size());
  ASSERT_EQ(seen.size(), events.size());
  for (const auto& [routing_key, body] : events) {
    json j = json::parse(body);
    std::string id = j.value("eventId", j.value("id", ""));
    std::string org = j.contains("data") ? j["data"]["organizationId"] : j["organizationId"];
    const auto& m = seen[id];
    EXPECT_EQ(m.key, org) << id;
    EXPECT_EQ(m.partition, topology::PartitionForKey(org, kPartitions)) << id;
    EXPECT_EQ(m.value, body) << id;
  }
  // Acked once Kafka had them: the queue is empty and nothing comes back after the bridge stops.
  ASSERT_TRUE(WaitFor([&] { return bridge.Counters().acked == events.size(); }, 30s))
      << bridge.Counters().acked;
  EXPECT_EQ(bridge.Counters().produced, events.size());
  bridge.Stop();
  EXPECT_EQ(publisher_->Ready(queue_), 0u);
}

TEST_F(RabbitmqBridgeTest, MalformedMessagesGoToTheDlqWithTheirReasonAndAreAcked) {
  auto& bridge = StartBridge(Options());
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"api.call", "not json {"},
      {"api.call", "[1,2]"},
      {"document.created", R"({"eventId":"x1","eventType":"document.created"})"},
      {"api.call", R"({"eventId":"x2","organizationId":42})"},
      {"api.call", R"({"specversion":"1.0","id":"x3","type":"api.call","source":"/s","data":{}})"}};
  const std::vector<std::string> reasons = {
      "not valid JSON", "not a JSON object", "no organizationId",
      "organizationId must be a non-empty string", "no organizationId"};
  auto messages = bad;
  messages.emplace_back("api.call", Event("good", "org-1"));
  publisher_->PublishAll(exchange_, messages);

  testing::TopicReader dlq(broker_->bootstrap_servers(), dlq_, 1);
  std::vector<testing::TopicReader::Message> dead;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (auto& m : dlq.Poll()) dead.push_back(m);
        return dead.size() >= bad.size();
      },
      30s));
  ASSERT_EQ(dead.size(), bad.size());
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_EQ(dead[i].value, bad[i].second);  // one partition: in publishing order
    std::map<std::string, std::string> headers(dead[i].headers.begin(), dead[i].headers.end());
    EXPECT_EQ(headers["dlq-reason"], reasons[i]) << bad[i].second;
    EXPECT_EQ(headers["dlq-source"], "rabbitmq-bridge/" + queue_);
    EXPECT_EQ(headers["amqp-routing-key"], bad[i].first);
  }
  auto good = ReadEvents(1);
  ASSERT_EQ(good.count("good"), 1u);
  EXPECT_EQ(good["good"].key, "org-1");

  ASSERT_TRUE(WaitFor([&] { return bridge.Counters().acked == messages.size(); }, 30s));
  EXPECT_EQ(bridge.Counters().dlq, bad.size());
  EXPECT_EQ(bridge.Counters().produced, 1u);
  bridge.Stop();
  EXPECT_EQ(publisher_->Ready(queue_), 0u) << "the queue drains: the DLQ'd messages were acked";
}

TEST_F(RabbitmqBridgeTest, HoldsMessagesUnackedWhileKafkaCannotAcknowledgeThem) {
  ASSERT_TRUE(broker_->SetAvailable(false).ok());
  auto options = Options();
  auto& bridge = StartBridge(options);
  auto first = Events("a", 50);
  publisher_->PublishAll(exchange_, first);
  ASSERT_TRUE(WaitFor([&] { return bridge.Counters().consumed == 50; }, 30s));
  // RabbitMQ holds all 50 as delivered and unacknowledged while Kafka is down.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto c = testing::RabbitmqctlQueueCounts(queue_);
        return c.unacked == 50 && c.ready == 0;
      },
      30s, 200ms));
  EXPECT_EQ(bridge.Counters().acked, 0u);
  EXPECT_EQ(bridge.Counters().produced, 0u);

  // Kafka comes back: the same bridge delivers and acks them.
  ASSERT_TRUE(broker_->SetAvailable(true).ok());
  ASSERT_TRUE(WaitFor([&] { return bridge.Counters().acked == 50; }, 60s))
      << bridge.Counters().acked;

  // Kafka goes away again, and the bridge stops meanwhile: what it could not deliver goes back
  // to the queue (ready), and a new bridge delivers it once Kafka is back.
  ASSERT_TRUE(broker_->SetAvailable(false).ok());
  auto second = Events("b", 20);
  publisher_->PublishAll(exchange_, second);
  ASSERT_TRUE(WaitFor([&] { return bridge.Counters().consumed == 70; }, 30s));
  bridge.Stop();
  EXPECT_EQ(bridge.Counters().acked, 50u);
  EXPECT_EQ(publisher_->Ready(queue_), 20u);
  ASSERT_TRUE(broker_->SetAvailable(true).ok());
  auto& again = StartBridge(options);
  ASSERT_TRUE(WaitFor([&] { return again.Counters().acked == 20; }, 60s)) << again.Counters().acked;
  auto seen = ReadEvents(70);
  EXPECT_EQ(seen.size(), 70u);
  for (const auto& batch : {first, second}) {
    for (const auto& [rk, body] : batch) {
      EXPECT_EQ(seen.count(json::parse(body)["eventId"].get<std::string>()), 1u) << body;
    }
  }
  again.Stop();
  EXPECT_EQ(publisher_->Ready(queue_), 0u);
}

TEST_F(RabbitmqBridgeTest, ReconnectsAfterRabbitMqClosesItsConnection) {
  auto options = Options();
  auto& bridge = StartBridge(options);
  publisher_->PublishAll(exchange_, Events("r", 100));
  ASSERT_TRUE(WaitFor([&] { return bridge.Counters().acked == 100; }, 30s));

  ASSERT_EQ(testing::CloseConnectionsNamed(options.connection_name), 1);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto c = bridge.Counters();
        return c.reconnects >= 1 && c.connected;
      },
      30s));
  publisher_->PublishAll(exchange_, Events("s", 100));
  auto seen = ReadEvents(200);
  EXPECT_EQ(seen.size(), 200u);
  ASSERT_TRUE(WaitFor([&] { return bridge.Counters().acked >= 200; }, 30s));
  bridge.Stop();
  EXPECT_EQ(publisher_->Ready(queue_), 0u);
}

TEST_F(RabbitmqBridgeTest, TwoBridgesSharingTheQueueDeliverEverything) {
  auto options = Options();
  options.prefetch = 20;
  auto& a = StartBridge(options);
  options.connection_name = testing::UniqueName("it-bridge-conn");
  auto& b = StartBridge(options);
  ASSERT_TRUE(WaitFor([&] { return a.Counters().connected && b.Counters().connected; }, 30s));
  auto events = Events("t", 3000);
  publisher_->PublishAll(exchange_, events);
  auto seen = ReadEvents(events.size());
  EXPECT_EQ(seen.size(), events.size());
  ASSERT_TRUE(
      WaitFor([&] { return a.Counters().acked + b.Counters().acked == events.size(); }, 30s));
  EXPECT_GT(a.Counters().consumed, 0u);
  EXPECT_GT(b.Counters().consumed, 0u);
  a.Stop();
  b.Stop();
  EXPECT_EQ(publisher_->Ready(queue_), 0u);
}

}  // namespace
}  // namespace cm
