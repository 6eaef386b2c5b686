#include "bridges/rabbitmq/amqp_bridge.h"

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

#include <sstream>

#include "bridges/rabbitmq/event_key.h"
#include "topology/common/log.h"
#include "topology/common/prometheus_text.h"
#include "topology/common/thread_name.h"

namespace cm::rabbitmq {

using state::Status;
using topology::Log;
using topology::LogLevel;

namespace {

constexpr amqp_channel_t kChannel = 1;
// Messages read from the socket between two turns of Kafka polling and acking.
constexpr int kConsumeBatch = 256;

amqp_bytes_t Bytes(const std::string& s) { return amqp_cstring_bytes(s.c_str()); }

std::string_view View(amqp_bytes_t b) { return {static_cast<const char*>(b.bytes), b.len}; }

// The error text of an RPC reply; empty when it succeeded.
std::string ReplyError(const amqp_rpc_reply_t& reply, const char* what) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "";
    case AMQP_RESPONSE_NONE:
      return std::string(what) + ": no reply";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return std::string(what) + ": " + amqp_error_string2(reply.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto* m = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
        return std::string(what) +
               ": connection closed by server: " + std::string(View(m->reply_text));
      }
      if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        auto* m = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
        return std::string(what) +
               ": channel closed by server: " + std::string(View(m->reply_text));
      }
      return std::string(what) + ": server exception";
  }
  return std::string(what) + ": unknown reply";
}

struct ParsedUrl {
  std::vector<char> text;  // amqp_parse_url points `info` into this buffer
  amqp_connection_info info{};
};

Status ParseUrl(const std::string& url, ParsedUrl& out) {
  out.text.assign(url.begin(), url.end());
  out.text.push_back('\0');
  amqp_default_connection_info(&out.info);
  if (amqp_parse_url(out.text.data(), &out.info) != AMQP_STATUS_OK) {
    return Status::InvalidArgument("bad AMQP URL '" + url +
                                   "' (expected amqp://user:password@host:port/vhost)");
  }
  if (out.info.ssl) return Status::InvalidArgument("amqps:// is not supported; use amqp://");
  // amqp://host:5672/ names the empty vhost by the letter of the URI spec; every client of the
  // seeds means the default vhost "/" by it, and no server has an empty one.
  if (out.info.vhost == nullptr || *out.info.vhost == '\0') out.info.vhost = const_cast<char*>("/");
  return Status::OK();
}

}  // namespace

std::vector<std::string> DefaultRoutingKeys() {
  return {"document.#", "storage.#", "presence.#", "api.#", "compute.#", "billing.#", "team.#"};
}

struct AmqpBridge::Connection {
  amqp_connection_state_t state = amqp_new_connection();
  ~Connection() {
    // Closing the channel and connection hands every unacked message back to the queue; if the
    // connection is already gone these fail and the server does the same on its side.
    if (open) {
      amqp_channel_close(state, kChannel, AMQP_REPLY_SUCCESS);
      amqp_connection_close(state, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(state);
  }
  bool open = false;
};

AmqpBridge::AmqpBridge(AmqpBridgeOptions options) : options_(std::move(options)) {}

AmqpBridge::~AmqpBridge() { Stop(); }

Status AmqpBridge::Start() {
  ParsedUrl url;
  if (auto s = ParseUrl(options_.amqp_url, url); !s.ok()) return s;
  if (options_.bootstrap_servers.empty()) return Status::InvalidArgument("no Kafka brokers given");
  if (options_.prefetch < 1 || options_.prefetch > 65535) {
    return Status::InvalidArgument("prefetch must be 1..65535");
  }
  if (options_.routing_keys.empty()) return Status::InvalidArgument("no routing keys given");
  thread_ = std::thread([this] {
    topology::NameCurrentThread("cm-amqp");
    Run();
  });
  return Status::OK();
}

void AmqpBridge::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AmqpBridge::WaitForStop(std::chrono::milliseconds duration) {
  std::unique_lock<std::mutex> lock(mu_);
  stop_cv_.wait_for(lock, duration, [this] { return stop_.load(); });
}

void AmqpBridge::Run() {
  auto backoff = options_.reconnect_backoff_min;
  while (!stop_) {
    if (producer_ == nullptr) {
      topology::RecordProducerOptions producer_options;
      producer_options.bootstrap_servers = options_.bootstrap_servers;
      producer_options.client_id = "cmstream-bridge";
      producer_options.idempotent = true;
      producer_options.delivery_timeout = options_.kafka_delivery_timeout;
      producer_options.overrides = options_.producer_overrides;
      auto created = topology::RecordProducer::Create(producer_options);
      if (!created.ok()) {
        // A setting librdkafka refuses will not get better; say so and keep trying slowly.
        Log(LogLevel::kError, "bridge_producer_failed", {{"error", created.status().ToString()}});
        WaitForStop(options_.reconnect_backoff_max);
        continue;
      }
      producer_ = std::move(created).value();
      producer_fatal_ = false;
    }
    bool connected = false;
    Status ended = Session(connected);
    connected_ = false;
    ++generation_;  // reports still to come are for a channel that is gone
    pending_.clear();
    if (connected) backoff = options_.reconnect_backoff_min;
    if (producer_fatal_) producer_.reset();  // its failed records report here, as stale
    if (stop_) break;
    ++reconnects_;
    Log(LogLevel::kWarn, "bridge_disconnected",
        {{"error", ended.ToString()}, {"retryInMs", backoff.count()}});
    WaitForStop(backoff);
    backoff = std::min(backoff * 2, options_.reconnect_backoff_max);
  }
  producer_.reset();
  auto c = Counters();
  Log(LogLevel::kInfo, "bridge_stopped",
      {{"consumed", c.consumed}, {"produced", c.produced}, {"dlq", c.dlq}, {"acked", c.acked}});
}

Status AmqpBridge::Session(bool& connected) {
  ParsedUrl url;
  if (auto s = ParseUrl(options_.amqp_url, url); !s.ok()) return s;
  Connection c;
  amqp_socket_t* socket = amqp_tcp_socket_new(c.state);
  if (socket == nullptr) return Status::Unavailable("cannot create a socket");
  timeval connect_timeout{5, 0};
  if (int rc = amqp_socket_open_noblock(socket, url.info.host, url.info.port, &connect_timeout);
      rc != AMQP_STATUS_OK) {
    return Status::Unavailable(std::string("cannot connect to RabbitMQ at ") + url.info.host + ":" +
                               std::to_string(url.info.port) + ": " + amqp_error_string2(rc));
  }
  timeval rpc_timeout{30, 0};
  amqp_set_rpc_timeout(c.state, &rpc_timeout);
  amqp_table_entry_t property;
  property.key = amqp_cstring_bytes("connection_name");
  property.value.kind = AMQP_FIELD_KIND_UTF8;
  property.value.value.bytes = Bytes(options_.connection_name);
  amqp_table_t properties{1, &property};
  // Heartbeats find a server that went away without closing the socket.
  std::string error =
      ReplyError(amqp_login_with_properties(c.state, url.info.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 30,
                                            &properties, AMQP_SASL_METHOD_PLAIN, url.info.user,
                                            url.info.password),
                 "login");
  if (!error.empty()) return Status::Unavailable(error);
  c.open = true;
  amqp_channel_open(c.state, kChannel);
  if (error = ReplyError(amqp_get_rpc_reply(c.state), "channel.open"); !error.empty()) {
    return Status::Unavailable(error);
  }
  amqp_exchange_declare(c.state, kChannel, Bytes(options_.exchange), amqp_cstring_bytes("topic"),
                        /*passive=*/0, /*durable=*/1, /*auto_delete=*/0, /*internal=*/0,
                        amqp_empty_table);
  if (error = ReplyError(amqp_get_rpc_reply(c.state), "exchange.declare"); !error.empty()) {
    return Status::Unavailable(error);
  }
  amqp_queue_declare(c.state, kChannel, Bytes(options_.queue), /*passive=*/0, /*durable=*/1,
                     /*exclusive=*/0, /*auto_delete=*/0, amqp_empty_table);
  if (error = ReplyError(amqp_get_rpc_reply(c.state), "queue.declare"); !error.empty()) {
    return Status::Unavailable(error);
  }
  for (const auto& key : options_.routing_keys) {
    amqp_queue_bind(c.state, kChannel, Bytes(options_.queue), Bytes(options_.exchange), Bytes(key),
                    amqp_empty_table);
    if (error = ReplyError(amqp_get_rpc_reply(c.state), "queue.bind"); !error.empty()) {
      return Status::Unavailable(error);
    }
  }
  amqp_basic_qos(c.state, kChannel, 0, static_cast<uint16_t>(options_.prefetch), /*global=*/0);
  if (error = ReplyError(amqp_get_rpc_reply(c.state), "basic.qos"); !error.empty()) {
    return Status::Unavailable(error);
  }
  amqp_basic_consume(c.state, kChannel, Bytes(options_.queue), amqp_empty_bytes, /*no_local=*/0,
                     /*no_ack=*/0, /*exclusive=*/0, amqp_empty_table);
  if (error = ReplyError(amqp_get_rpc_reply(c.state), "basic.consume"); !error.empty()) {
    return Status::Unavailable(error);
  }
  connected = true;
  connected_ = true;
  Log(LogLevel::kInfo, "bridge_connected",
      {{"queue", options_.queue},
       {"exchange", options_.exchange},
       {"routingKeys", options_.routing_keys},
       {"prefetch", options_.prefetch},
       {"topic", options_.topic}});
  Status ended = Consume(c);
  if (stop_ && ended.ok()) Drain(c);
  return ended;
}

Status AmqpBridge::Consume(Connection& c) {
  while (!stop_) {
    if (producer_fatal_) return Status::Unavailable("the Kafka producer failed fatally");
    int got = 0;
    while (got < kConsumeBatch) {
      // Block for new messages only when nothing waits for Kafka; stop_ is seen within 100 ms.
      timeval timeout{0, pending_.empty() && got == 0 ? 100'000 : 0};
      amqp_envelope_t envelope;
      amqp_maybe_release_buffers(c.state);
      amqp_rpc_reply_t reply = amqp_consume_message(c.state, &envelope, &timeout, 0);
      if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
        Status handled =
            Handle(envelope.delivery_tag, envelope.redelivered != 0, View(envelope.message.body),
                   View(envelope.exchange), View(envelope.routing_key));
        amqp_destroy_envelope(&envelope);
        if (!handled.ok()) return handled;
        ++got;
        continue;
      }
      if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
          reply.library_error == AMQP_STATUS_TIMEOUT) {
        break;
      }
      if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
          reply.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
        // A method other than basic.deliver: the server closing the channel or connection, or
        // cancelling the consumer (queue deleted).
        amqp_frame_t frame;
        if (amqp_simple_wait_frame(c.state, &frame) != AMQP_STATUS_OK) {
          return Status::Unavailable("connection lost");
        }
        if (frame.frame_type != AMQP_FRAME_METHOD) continue;
        switch (frame.payload.method.id) {
          case AMQP_CONNECTION_CLOSE_METHOD: {
            auto* m = static_cast<amqp_connection_close_t*>(frame.payload.method.decoded);
            amqp_connection_close_ok_t ok{};
            amqp_send_method(c.state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
            c.open = false;
            return Status::Unavailable("connection closed by server: " +
                                       std::string(View(m->reply_text)));
          }
          case AMQP_CHANNEL_CLOSE_METHOD: {
            auto* m = static_cast<amqp_channel_close_t*>(frame.payload.method.decoded);
            return Status::Unavailable("channel closed by server: " +
                                       std::string(View(m->reply_text)));
          }
          case AMQP_BASIC_CANCEL_METHOD:
            return Status::Unavailable("consumer cancelled by server (queue deleted?)");
          default:
            continue;
        }
      }
      return Status::Unavailable(ReplyError(reply, "consume"));
    }
    // Delivery reports run OnDelivery here, in this thread.
    producer_->Poll(std::chrono::milliseconds(got == 0 && !pending_.empty() ? 1 : 0));
    if (auto s = AckResolved(c); !s.ok()) return s;
  }
  return Status::OK();
}

Status AmqpBridge::Handle(uint64_t tag, bool redelivered, std::string_view body,
                          std::string_view exchange, std::string_view routing_key) {
  ++consumed_;
  if (redelivered) ++redelivered_;
  if (!pending_.empty() && tag != pending_.back().tag + 1) {
    // Tags of one channel are consecutive; anything else is a protocol error on our side.
    return Status::Corruption("delivery tag " + std::to_string(tag) + " after " +
                              std::to_string(pending_.back().tag));
  }
  pending_.push_back({tag, State::kWaiting});
  auto key = ExtractOrganizationId(body);
  topology::OutgoingRecord record;
  bool dlq = !key.ok();
  if (!dlq) {
    record.topic = options_.topic;
    record.key = *key;
  } else {
    record.topic = options_.dlq_topic;
    record.headers = {{"dlq-reason", key.status().message()},
                      {"dlq-source", "rabbitmq-bridge/" + options_.queue},
                      {"amqp-exchange", std::string(exchange)},
                      {"amqp-routing-key", std::string(routing_key)}};
  }
  record.value = body;
  uint64_t generation = generation_;
  Status produced = producer_->Produce(record, [this, generation, tag, dlq](const auto& report) {
    OnDelivery(generation, tag, dlq, report);
  });
  if (!produced.ok()) {
    // Not queued (e.g. an invalid topic name): handled like a refused delivery.
    ++kafka_failures_;
    pending_.back().state = State::kFailed;
    Log(LogLevel::kError, "bridge_produce_failed", {{"error", produced.ToString()}});
  }
  return Status::OK();
}

void AmqpBridge::OnDelivery(uint64_t generation, uint64_t tag, bool dlq,
                            const topology::DeliveryReport& report) {
  if (report.status.ok()) {
    ++(dlq ? dlq_ : produced_);
  } else {
    ++kafka_failures_;
    if (report.fatal) producer_fatal_ = true;
  }
  // A report for an earlier channel (e.g. records purged at stop): RabbitMQ already took that
  // message back.
  if (generation != generation_ || pending_.empty() || tag < pending_.front().tag ||
      tag > pending_.back().tag) {
    return;
  }
  if (!report.status.ok()) {
    Log(LogLevel::kWarn, "bridge_delivery_failed",
        {{"error", report.status.ToString()}, {"fatal", report.fatal}, {"requeued", true}});
  }
  Pending& p = pending_[tag - pending_.front().tag];
  p.state = report.status.ok() ? State::kDone : State::kFailed;
}

Status AmqpBridge::AckResolved(Connection& c) {
  uint64_t ack_upto = 0;
  uint64_t count = 0;
  auto flush_acks = [&]() -> Status {
    if (count == 0) return Status::OK();
    if (int rc = amqp_basic_ack(c.state, kChannel, ack_upto, /*multiple=*/1); rc != 0) {
      return Status::Unavailable(std::string("basic.ack: ") + amqp_error_string2(rc));
    }
    acked_ += count;
    count = 0;
    return Status::OK();
  };
  while (!pending_.empty() && pending_.front().state != State::kWaiting) {
    Pending p = pending_.front();
    pending_.pop_front();
    if (p.state == State::kDone) {
      ack_upto = p.tag;
      ++count;
      continue;
    }
    // Acks before this tag go out first: a multiple ack past it would ack it too.
    if (auto s = flush_acks(); !s.ok()) return s;
    if (int rc = amqp_basic_nack(c.state, kChannel, p.tag, /*multiple=*/0, /*requeue=*/1);
        rc != 0) {
      return Status::Unavailable(std::string("basic.nack: ") + amqp_error_string2(rc));
    }
    ++requeued_;
  }
  return flush_acks();
}

void AmqpBridge::Drain(Connection& c) {
  auto deadline = std::chrono::steady_clock::now() + options_.shutdown_timeout;
  while (!pending_.empty() && std::chrono::steady_clock::now() < deadline) {
    producer_->Poll(std::chrono::milliseconds(10));
    if (!AckResolved(c).ok()) return;
  }
  if (!pending_.empty()) {
    Log(LogLevel::kWarn, "bridge_unacked_at_stop",
        {{"messages", pending_.size()}, {"note", "RabbitMQ redelivers them"}});
  }
}

AmqpBridgeCounters AmqpBridge::Counters() const {
  AmqpBridgeCounters c;
  c.consumed = consumed_;
  c.redelivered = redelivered_;
  c.produced = produced_;
  c.dlq = dlq_;
  c.acked = acked_;
  c.requeued = requeued_;
  c.kafka_failures = kafka_failures_;
  c.reconnects = reconnects_;
  c.connected = connected_;
  return c;
}

std::string AmqpBridge::RenderMetrics() const {
  AmqpBridgeCounters c = Counters();
  topology::PrometheusText out;
  auto family = [&](const char* name, const char* type, const char* help, uint64_t value) {
    out.Family(name, type, help).Sample(name, {{"queue", options_.queue}}, value);
  };
  family("cmstream_bridge_messages_consumed_total", "counter",
         "Messages received from RabbitMQ, redeliveries included.", c.consumed);
  family("cmstream_bridge_messages_redelivered_total", "counter",
         "Messages RabbitMQ flagged as redelivered.", c.redelivered);
  family("cmstream_bridge_messages_produced_total", "counter",
         "Messages Kafka acknowledged on the target topic.", c.produced);
  family("cmstream_bridge_messages_dlq_total", "counter",
         "Malformed messages Kafka acknowledged on the DLQ topic.", c.dlq);
  family("cmstream_bridge_messages_acked_total", "counter",
         "Messages acknowledged to RabbitMQ (after Kafka acknowledged them).", c.acked);
  family("cmstream_bridge_messages_requeued_total", "counter",
         "Messages given back to RabbitMQ after Kafka refused them.", c.requeued);
  family("cmstream_bridge_kafka_failures_total", "counter", "Failed Kafka deliveries.",
         c.kafka_failures);
  family("cmstream_bridge_reconnects_total", "counter",
         "Sessions ended by a lost connection and started again.", c.reconnects);
  family("cmstream_bridge_connected", "gauge", "1 while consuming from RabbitMQ.",
         c.connected ? 1 : 0);
  return out.str();
}

}  // namespace cm::rabbitmq
