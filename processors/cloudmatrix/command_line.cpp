#include "processors/cloudmatrix/command_line.h"

#include <iostream>

#include "topology/common/log.h"
#include "topology/common/units.h"

namespace cm::cloudmatrix {

using topology::Log;
using topology::LogLevel;

state::Result<HostPort> ParseHostPort(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos)
    return state::Status::InvalidArgument("expected HOST:PORT, got '" + text + "'");
  HostPort hp{text.substr(0, colon), 0};
  try {
    hp.port = std::stoi(text.substr(colon + 1));
  } catch (const std::exception&) {
    return state::Status::InvalidArgument("bad port in '" + text + "'");
  }
  return hp;
}

sigset_t BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

bool WaitForSignal(const sigset_t& set, const std::function<bool()>& healthy, long tick_ms) {
  timespec tick{tick_ms / 1000, tick_ms % 1000 * 1'000'000};
  for (;;) {
    int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      Log(LogLevel::kInfo, "signal", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
      return true;
    }
    if (!healthy()) return false;
  }
}

void AddBrokerFlags(CLI::App* cmd, BrokerFlags& f) {
  cmd->add_option("--brokers", f.brokers, "Kafka bootstrap servers")->envname("CM_BROKERS");
  cmd->add_option("--broker-admin", f.broker_admin,
                  "admin URL of a `cmstream broker` (it has no Admin API)")
      ->envname("CM_BROKER_ADMIN");
}

state::Result<Cluster> ConnectCluster(const BrokerFlags& flags, bool embedded) {
  Cluster c;
  if (embedded) {
    auto started = topology::EmbeddedBroker::Start();
    if (!started.ok()) return started.status();
    c.broker = std::move(started).value();
    c.bootstrap = c.broker->bootstrap_servers();
    c.embedded = true;
    c.admin = topology::NewEmbeddedTopicAdmin(*c.broker);
    Log(LogLevel::kInfo, "embedded_broker", {{"bootstrap", c.bootstrap}});
  } else if (!flags.brokers.empty()) {
    c.bootstrap = flags.brokers;
    c.embedded = OnEmbeddedBroker(flags, false);
    c.admin = c.embedded ? topology::NewRemoteEmbeddedTopicAdmin(flags.brokers, flags.broker_admin)
                         : topology::NewKafkaTopicAdmin(flags.brokers);
  } else {
    return state::Status::InvalidArgument("give --brokers HOST:PORT,... or --embedded");
  }
  return c;
}

void AddBridgeFlags(CLI::App* cmd, BridgeFlags& f, const std::string& url_help) {
  cmd->add_option("--amqp-url", f.amqp_url, url_help)->envname("RABBITMQ_URL");
  cmd->add_option("--exchange", f.options.exchange, "RabbitMQ topic exchange to bind")
      ->envname("CM_AMQP_EXCHANGE")
      ->capture_default_str();
  cmd->add_option("--queue", f.options.queue, "durable RabbitMQ queue to consume (shareable)")
      ->envname("CM_AMQP_QUEUE")
      ->capture_default_str();
  cmd->add_option("--routing-key", f.options.routing_keys,
                  "binding of the queue to the exchange (repeatable; env: comma-separated)")
      ->envname("CM_AMQP_ROUTING_KEYS")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--prefetch", f.options.prefetch, "unacked messages in flight (basic.qos)")
      ->envname("CM_AMQP_PREFETCH")
      ->check(CLI::Range(1, 65535))
      ->capture_default_str();
  cmd->add_option("--bridge-topic", f.options.topic, "Kafka topic the events go to")
      ->envname("CM_BRIDGE_TOPIC")
      ->capture_default_str();
  cmd->add_option("--reconnect-backoff", f.reconnect_backoff,
                  "longest wait between reconnection attempts (starts at 100ms, doubling)")
      ->envname("CM_AMQP_RECONNECT_BACKOFF")
      ->capture_default_str();
}

bool ResolveBridgeFlags(BridgeFlags& f, const std::string& bootstrap_servers,
                        const std::string& dlq_topic) {
  auto backoff = topology::ParseDuration(f.reconnect_backoff);
  if (!backoff.ok()) {
    std::cerr << "--reconnect-backoff: " << backoff.status().message() << '\n';
    return false;
  }
  f.options.amqp_url = f.amqp_url;
  f.options.reconnect_backoff_max = *backoff;
  f.options.bootstrap_servers = bootstrap_servers;
  f.options.dlq_topic = dlq_topic;
  return true;
}

void AddLimitFlags(CLI::App* cmd, LimitFlags& f) {
  cmd->add_option("--max-event-bytes", f.max_event_bytes,
                  std::string("largest usage event as appended; a larger one is 400 (or the DLQ); "
                              "at most --http-max-body [") +
                      kMaxEventBytes + ", " + kEmbeddedMaxEventBytes + " on the embedded broker]")
      ->envname("CM_MAX_EVENT_BYTES");
  cmd->add_option("--max-batch-events", f.max_batch_events,
                  "most events in one POST /v1/usage/events {\"events\":[...]}; more is 400")
      ->envname("CM_MAX_BATCH_EVENTS")
      ->capture_default_str();
  cmd->add_option("--max-json-depth", f.max_json_depth,
                  "deepest nesting of arrays and objects in a usage body or record, 3 to 64; "
                  "deeper is 400 (or the DLQ)")
      ->envname("CM_MAX_JSON_DEPTH")
      ->capture_default_str();
  cmd->add_option("--max-id-bytes", f.max_id_bytes,
                  "longest eventId, organizationId, userId, resourceId, eventType, "
                  "resourceType, commandId or Idempotency-Key; longer is 400")
      ->envname("CM_MAX_ID_BYTES")
      ->capture_default_str();
  cmd->add_option("--max-query-buckets", f.max_query_buckets,
                  "most buckets of its granularity a metrics query spans (100000 minutes is 69 "
                  "days); more is 400")
      ->envname("CM_MAX_QUERY_BUCKETS")
      ->capture_default_str();
  cmd->add_option("--max-report-range", f.max_report_range,
                  "longest usage report period; longer is 400")
      ->envname("CM_MAX_REPORT_RANGE")
      ->capture_default_str();
}

state::Result<usage::UsageLimits> ParseLimitFlags(const LimitFlags& f, uint64_t max_body_bytes,
                                                  bool embedded_broker) {
  auto bad = [](const std::string& message) { return state::Status::InvalidArgument(message); };
  usage::UsageLimits limits;
  const std::string event_flag = !f.max_event_bytes.empty() ? f.max_event_bytes
                                 : embedded_broker          ? kEmbeddedMaxEventBytes
                                                            : kMaxEventBytes;
  auto event = topology::ParseBytes(event_flag);
  if (!event.ok()) return bad("--max-event-bytes: " + event.status().message());
  if (*event == 0) return bad("--max-event-bytes must be positive");
  if (*event > max_body_bytes)
    return bad("--max-event-bytes (" + std::to_string(*event) +
               ") must not exceed --http-max-body (" + std::to_string(max_body_bytes) +
               "): an event arrives in a request body");
  limits.max_event_bytes = static_cast<size_t>(*event);
  for (auto [flag, value] : {std::pair{"--max-batch-events", f.max_batch_events},
                             std::pair{"--max-id-bytes", f.max_id_bytes},
                             std::pair{"--max-query-buckets", f.max_query_buckets}}) {
    if (value <= 0)
      return bad(std::string(flag) + " must be positive, got " + std::to_string(value));
  }
  limits.max_batch_events = static_cast<size_t>(f.max_batch_events);
  limits.max_id_bytes = static_cast<size_t>(f.max_id_bytes);
  limits.max_query_buckets = f.max_query_buckets;
  if (f.max_json_depth < 3 || f.max_json_depth > topology::kMaxJsonDepth)
    return bad("--max-json-depth must be 3 (a batch {\"events\":[{...}]}) to " +
               std::to_string(topology::kMaxJsonDepth) + ", got " +
               std::to_string(f.max_json_depth));
  limits.max_json_depth = f.max_json_depth;
  auto range = topology::ParseDuration(f.max_report_range);
  if (!range.ok() || range->count() <= 0)
    return bad("--max-report-range: expected a positive duration like 400d");
  limits.max_report_range_ms = range->count();
  if (auto s = limits.Validate(); !s.ok()) return s;
  return limits;
}

}  // namespace cm::cloudmatrix
