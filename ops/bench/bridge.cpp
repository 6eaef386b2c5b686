// bench_bridge: throughput of the RabbitMQ -> Kafka bridge against a raw consume-and-ack of
// the same queue, in one run.
//
// One process hosts the embedded Kafka broker; RabbitMQ is the server of ops/services
// (RABBITMQ_URL). Per round:
//   publish: --messages persistent messages (usage events as JSON, ~150 bytes) are published
//            with publisher confirms to a fresh exchange/queue (not timed against anything);
//   (a) raw: a plain rabbitmq-c consumer with the same prefetch consumes and acks the queue
//       (ack multiple=true every 256 messages, as the bridge batches); timed from its first
//       message to its last ack; no Kafka involved;
//   publish the same messages again;
//   (b) bridge: an AmqpBridge (the one `cmstream bridge` runs) consumes the queue and produces
//       each message to Kafka (idempotent producer, keyed by organizationId, fresh topic); timed
//       from its first consumed message to the moment it acked the last one, i.e. after Kafka
//       acknowledged every message.
// ratio = bridge msgs/s / raw msgs/s. Checks: the raw consumer saw every message, the bridge
// acked every message and the Kafka topic holds at least --messages records.
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "bridges/rabbitmq/amqp_bridge.h"
#include "ops/bench/bench_common.h"
#include "tests/support/amqp_publisher.h"

namespace {

using namespace cm::bench;

struct Options {
  int messages = 200'000;
  int rounds = 3;
  int prefetch = 1000;
  int partitions = 16;
};

// Consumes `count` messages from `queue` and acks them; returns msgs/s, first message to last
// ack.
double RawConsumeAndAck(const std::string& url, const std::string& queue, int prefetch, int count) {
  std::vector<char> text(url.begin(), url.end());
  text.push_back('\0');
  amqp_connection_info info;
  amqp_parse_url(text.data(), &info);
  if (*info.vhost == '\0') info.vhost = const_cast<char*>("/");
  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t* socket = amqp_tcp_socket_new(conn);
  if (amqp_socket_open(socket, info.host, info.port) != AMQP_STATUS_OK) Die("raw: cannot connect");
  if (amqp_login(conn, info.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN, info.user,
                 info.password)
          .reply_type != AMQP_RESPONSE_NORMAL) {
    Die("raw: login failed");
  }
  amqp_channel_open(conn, 1);
  amqp_basic_qos(conn, 1, 0, static_cast<uint16_t>(prefetch), 0);
  amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue.c_str()), amqp_empty_bytes, 0, 0, 0,
                     amqp_empty_table);
  if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) Die("raw: consume failed");
  Clock::time_point first{};
  uint64_t checksum = 0;
  uint64_t last_tag = 0;
  int unacked = 0;
  for (int got = 0; got < count;) {
    timeval timeout{30, 0};
    amqp_envelope_t envelope;
    amqp_maybe_release_buffers(conn);
    amqp_rpc_reply_t r = amqp_consume_message(conn, &envelope, &timeout, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
      Die("raw: consume stopped after " + std::to_string(got));
    if (got++ == 0) first = Clock::now();
    // Touch the bytes, as any consumer would at least do.
    const auto* b = static_cast<const unsigned char*>(envelope.message.body.bytes);
    if (envelope.message.body.len > 0) checksum += b[0] + b[envelope.message.body.len - 1];
    last_tag = envelope.delivery_tag;
    amqp_destroy_envelope(&envelope);
    if (++unacked >= 256 || got == count) {
      amqp_basic_ack(conn, 1, last_tag, 1);
      unacked = 0;
    }
  }
  double seconds = Seconds(Clock::now() - first);
  amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn);
  if (checksum == 0) Die("raw: empty messages");
  return count / seconds;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"bench_bridge: RabbitMQ -> bridge -> Kafka against raw consume-and-ack"};
  app.add_option("--messages", o.messages)->capture_default_str();
  app.add_option("--rounds", o.rounds)->capture_default_str();
  app.add_option("--prefetch", o.prefetch)->capture_default_str();
  app.add_option("--partitions", o.partitions)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::string url = cm::testing::RabbitmqUrl();
  auto started = cm::topology::EmbeddedBroker::Start();
  if (!started.ok()) Die("embedded broker: " + started.status().ToString());
  auto broker = std::move(started).value();
  const std::string exchange = cm::testing::UniqueName("bench-bridge-ex");
  const std::string queue = cm::testing::UniqueName("bench-bridge-q");
  cm::testing::AmqpPublisher publisher(url);
  publisher.DeclareQueue(exchange, queue, cm::rabbitmq::DefaultRoutingKeys());

  std::vector<std::pair<std::string, std::string>> messages;
  const int64_t ts = cm::topology::WallClockMs();
  for (int i = 0; i < o.messages; ++i) {
    nlohmann::json e = {{"eventId", "bench-" + std::to_string(i)},
                        {"organizationId", "org-" + std::to_string(i % 1000)},
                        {"userId", "user-" + std::to_string(i % 5000)},
                        {"eventType", "api.call"},
                        {"resourceType", "document"},
                        {"timestamp", ts}};
    messages.emplace_back("api.call", e.dump());
  }
  Say("bench: %d messages of %zu bytes, prefetch %d, %d rounds, RabbitMQ %s\n", o.messages,
      messages[0].second.size(), o.prefetch, o.rounds, url.c_str());

  Table table({{"publish msg/s", "%.0f"},
               {"raw consume+ack msg/s", "%.0f"},
               {"bridge msg/s", "%.0f"},
               {"ratio", "%.3f"}});
  bool ok = true;
  for (int round = 1; round <= o.rounds; ++round) {
    auto t0 = Clock::now();
    publisher.PublishAll(exchange, messages);
    double publish_rate = o.messages / Seconds(Clock::now() - t0);
    double raw = RawConsumeAndAck(url, queue, o.prefetch, o.messages);

    publisher.PublishAll(exchange, messages);
    const std::string topic = "bench-bridge-events-" + std::to_string(round);
    if (auto s = broker->CreateTopic(topic, o.partitions); !s.ok()) Die(s.ToString());
    cm::rabbitmq::AmqpBridgeOptions bo;
    bo.amqp_url = url;
    bo.exchange = exchange;
    bo.queue = queue;
    bo.prefetch = o.prefetch;
    bo.bootstrap_servers = broker->bootstrap_servers();
    bo.topic = topic;
    bo.dlq_topic = "bench-bridge-dlq";
    cm::rabbitmq::AmqpBridge bridge(bo);
    if (auto s = bridge.Start(); !s.ok()) Die(s.ToString());
    Clock::time_point first{}, done{};
    auto give_up = Clock::now() + std::chrono::minutes(5);
    for (;;) {
      auto c = bridge.Counters();
      auto now = Clock::now();
      if (first == Clock::time_point{} && c.consumed > 0) first = now;
      if (c.acked >= static_cast<uint64_t>(o.messages)) {
        done = now;
        break;
      }
      if (now > give_up) Die("the bridge did not ack every message within 5 minutes");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    bridge.Stop();
    double rate = o.messages / Seconds(done - first);
    auto c = bridge.Counters();
    Watermarks w = QueryWatermarks(broker->bootstrap_servers(), topic, o.partitions);
    if (w.TotalHigh() < o.messages || c.produced < static_cast<uint64_t>(o.messages)) {
      Say("bench: CHECK FAILED: %lld records on %s, %llu produced, for %d messages\n",
          static_cast<long long>(w.TotalHigh()), topic.c_str(),
          static_cast<unsigned long long>(c.produced), o.messages);
      ok = false;
    }
    table.Add("round " + std::to_string(round), {publish_rate, raw, rate, rate / raw});
    Say("bench: round %d: raw %.0f msg/s, bridge %.0f msg/s, ratio %.3f\n", round, raw, rate,
        rate / raw);
  }
  table.AddMedian();
  table.Print(stdout);
  std::printf("check: %s (every message acked by the bridge and on the Kafka topic)\n",
              ok ? "ok" : "FAILED");
  publisher.Delete(exchange, queue);
  return ok ? 0 : 1;
}
