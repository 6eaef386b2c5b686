#pragma once

// What several subcommands share: flags, addresses, signals and the broker they talk to.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>

#include "bridges/rabbitmq/amqp_bridge.h"
#include "processors/usage/usage_limits.h"
#include "state/status.h"
#include "topology/kafka/embedded_broker.h"
#include "topology/kafka/topic_admin.h"

namespace cm::cloudmatrix {

struct HostPort {
  std::string host;
  int port = 0;
};
state::Result<HostPort> ParseHostPort(const std::string& text);

// SIGINT/SIGTERM are blocked in every thread and taken synchronously by WaitForSignal, so
// shutdown runs in normal code rather than in a signal handler. Call before any thread starts.
sigset_t BlockTerminationSignals();
// Waits for a termination signal, calling `healthy` every tick: true on a signal, false as
// soon as `healthy` returns false.
bool WaitForSignal(const sigset_t& set, const std::function<bool()>& healthy, long tick_ms = 1000);

// --brokers and --broker-admin, the same for every command that talks to Kafka.
struct BrokerFlags {
  std::string brokers;
  std::string broker_admin;
};
void AddBrokerFlags(CLI::App* cmd, BrokerFlags& f);

// The broker a command talks to, and how topics are created on it.
struct Cluster {
  std::unique_ptr<topology::EmbeddedBroker> broker;  // --embedded only
  std::unique_ptr<topology::TopicAdmin> admin;
  std::string bootstrap;
  bool embedded = false;  // librdkafka's mock: no transaction filtering, no lookups by time
};
// An embedded broker in this process, or the one --brokers names (a `cmstream broker` when
// --broker-admin is given). InvalidArgument when neither is given.
state::Result<Cluster> ConnectCluster(const BrokerFlags& flags, bool embedded);
// Whether ConnectCluster(flags, embedded) will talk to an embedded broker, known before it runs.
inline bool OnEmbeddedBroker(const BrokerFlags& flags, bool embedded) {
  return embedded || (!flags.brokers.empty() && !flags.broker_admin.empty());
}

// The RabbitMQ bridge's flags, the same for `run --amqp-url` and `bridge`.
struct BridgeFlags {
  std::string amqp_url;
  rabbitmq::AmqpBridgeOptions options;
  std::string reconnect_backoff = "10s";
};
void AddBridgeFlags(CLI::App* cmd, BridgeFlags& f, const std::string& url_help);
// Fills in the options from the flags; false (after saying why) when one is invalid.
bool ResolveBridgeFlags(BridgeFlags& f, const std::string& bootstrap_servers,
                        const std::string& dlq_topic);

// The usage application's input limits (README "Configuration"), the same for `run` and
// `backfill`, so a backfill judges every record as the live application did. Defaults are
// usage::UsageLimits's.
struct LimitFlags {
  std::string max_event_bytes;  // empty: kMaxEventBytes, or kEmbeddedMaxEventBytes
  int64_t max_batch_events = 1000;
  int max_json_depth = 32;
  int64_t max_id_bytes = 256;
  int64_t max_query_buckets = 100'000;
  std::string max_report_range = "400d";
};
// --max-event-bytes's default on a Kafka cluster, and on the embedded broker: it keeps
// EmbeddedBroker::kPartitionBytes (5 MiB) a partition, which holds more than 1,000 events of
// 4 KiB with their 256-byte key and batch overhead (EmbeddedBrokerTest checks it), and only
// about 80 of 64 KiB.
inline constexpr const char* kMaxEventBytes = "64KiB";
inline constexpr const char* kEmbeddedMaxEventBytes = "4KiB";
void AddLimitFlags(CLI::App* cmd, LimitFlags& f);
// The limits the flags describe, or InvalidArgument naming the bad flag. An event arrives in a
// request body, so it may not be larger than `max_body_bytes` (--http-max-body).
// `embedded_broker` picks --max-event-bytes's default (OnEmbeddedBroker).
state::Result<usage::UsageLimits> ParseLimitFlags(const LimitFlags& f, uint64_t max_body_bytes,
                                                  bool embedded_broker);

}  // namespace cm::cloudmatrix
