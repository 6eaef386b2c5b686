#pragma once

// A plain AMQP client (rabbitmq-c) for tests and benchmarks: declares the bridge's topology,
// publishes persistent messages with publisher confirms, reads queue depths. Also helpers that
// drive `rabbitmqctl` (connection close, ready/unacked counts), which needs root on the test
// machine as ops/services sets it up.
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace cm::testing {

inline std::string RabbitmqUrl() {
  const char* url = std::getenv("RABBITMQ_URL");
  return url != nullptr && *url != '\0' ? url : "amqp://guest:guest@127.0.0.1:5672/";
}

// A name no other test or agent uses: prefix-pid-random.
inline std::string UniqueName(const std::string& prefix) {
  std::random_device rd;
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000);
}

class AmqpPublisher {
 public:
  explicit AmqpPublisher(const std::string& url = RabbitmqUrl()) {
    std::vector<char> text(url.begin(), url.end());
    text.push_back('\0');
    amqp_connection_info info;
    amqp_default_connection_info(&info);
    if (amqp_parse_url(text.data(), &info) != AMQP_STATUS_OK) throw Error("bad url " + url);
    if (*info.vhost == '\0') info.vhost = const_cast<char*>("/");  // as the bridge reads it
    conn_ = amqp_new_connection();
    amqp_socket_t* socket = amqp_tcp_socket_new(conn_);
    if (amqp_socket_open(socket, info.host, info.port) != AMQP_STATUS_OK) {
      throw Error("cannot connect to " + url);
    }
    Check(amqp_login(conn_, info.vhost, 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN,
                     info.user, info.password),
          "login");
    amqp_channel_open(conn_, 1);
    Check(amqp_get_rpc_reply(conn_), "channel.open");
    amqp_confirm_select(conn_, 1);
    Check(amqp_get_rpc_reply(conn_), "confirm.select");
  }
  ~AmqpPublisher() {
    amqp_channel_close(conn_, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn_);
  }
  AmqpPublisher(const AmqpPublisher&) = delete;
  AmqpPublisher& operator=(const AmqpPublisher&) = delete;

  // The bridge's topology, declared the same way it does (durable topic exchange, durable
  // queue), so that messages published before the bridge runs are routed and kept.
  void DeclareQueue(const std::string& exchange, const std::string& queue,
                    const std::vector<std::string>& routing_keys) {
    amqp_exchange_declare(conn_, 1, amqp_cstring_bytes(exchange.c_str()),
                          amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
    Check(amqp_get_rpc_reply(conn_), "exchange.declare");
    amqp_queue_declare(conn_, 1, amqp_cstring_bytes(queue.c_str()), 0, 1, 0, 0, amqp_empty_table);
    Check(amqp_get_rpc_reply(conn_), "queue.declare");
    for (const auto& key : routing_keys) {
      amqp_queue_bind(conn_, 1, amqp_cstring_bytes(queue.c_str()),
                      amqp_cstring_bytes(exchange.c_str()), amqp_cstring_bytes(key.c_str()),
                      amqp_empty_table);
      Check(amqp_get_rpc_reply(conn_), "queue.bind");
    }
  }
  void Delete(const std::string& exchange, const std::string& queue) {
    amqp_queue_delete(conn_, 1, amqp_cstring_bytes(queue.c_str()), 0, 0);
    Check(amqp_get_rpc_reply(conn_), "queue.delete");
    amqp_exchange_delete(conn_, 1, amqp_cstring_bytes(exchange.c_str()), 0);
    Check(amqp_get_rpc_reply(conn_), "exchange.delete");
  }
  // Messages ready for delivery (not counting those delivered and not yet acked).
  uint32_t Ready(const std::string& queue) {
    auto* ok = amqp_queue_declare(conn_, 1, amqp_cstring_bytes(queue.c_str()), 1, 1, 0, 0,
                                  amqp_empty_table);
    Check(amqp_get_rpc_reply(conn_), "queue.declare passive");
    return ok->message_count;
  }

  // Publishes persistent messages (delivery_mode 2), `window` at a time, each window confirmed
  // by the broker before the next: when this returns, RabbitMQ has every message on disk.
  void PublishAll(const std::string& exchange,
                  const std::vector<std::pair<std::string, std::string>>& messages,
                  size_t window = 2000) {
    for (size_t start = 0; start < messages.size(); start += window) {
      size_t end = std::min(messages.size(), start + window);
      for (size_t i = start; i < end; ++i) Send(exchange, messages[i].first, messages[i].second);
      WaitForConfirms();
    }
  }
  void Publish(const std::string& exchange, const std::string& routing_key,
               const std::string& body) {
    Send(exchange, routing_key, body);
    WaitForConfirms();
  }

 private:
  struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  void Check(const amqp_rpc_reply_t& r, const char* what) {
    if (r.reply_type != AMQP_RESPONSE_NORMAL) throw Error(std::string("AMQP ") + what + " failed");
  }

  void Send(const std::string& exchange, const std::string& routing_key, const std::string& body) {
    amqp_basic_properties_t props{};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.delivery_mode = 2;  // persistent
    amqp_bytes_t payload{body.size(), const_cast<char*>(body.data())};
    if (amqp_basic_publish(conn_, 1, amqp_cstring_bytes(exchange.c_str()),
                           amqp_cstring_bytes(routing_key.c_str()), 0, 0, &props,
                           payload) != AMQP_STATUS_OK) {
      throw Error("basic.publish failed");
    }
    ++published_;
  }

  // Reads basic.ack / basic.nack frames until every published message is confirmed.
  void WaitForConfirms() {
    while (confirmed_ < published_) {
      amqp_frame_t frame;
      if (amqp_simple_wait_frame(conn_, &frame) != AMQP_STATUS_OK) throw Error("connection lost");
      if (frame.frame_type != AMQP_FRAME_METHOD) continue;
      if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
        auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
        confirmed_ = ack->multiple ? ack->delivery_tag : std::max(confirmed_, ack->delivery_tag);
      } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
        throw Error("the broker refused a published message (basic.nack)");
      } else if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                 frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
        throw Error("the broker closed the publishing channel");
      }
    }
    amqp_maybe_release_buffers(conn_);
  }

  amqp_connection_state_t conn_;
  uint64_t published_ = 0;
  uint64_t confirmed_ = 0;
};

// Output of a shell command (stdout).
inline std::string ShellOutput(const std::string& command) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return out;
  std::array<char, 4096> buf;
  while (size_t n = std::fread(buf.data(), 1, buf.size(), pipe.get())) out.append(buf.data(), n);
  return out;
}

// Closes, through rabbitmqctl, every connection whose client properties name it
// `connection_name`; returns how many it closed.
inline int CloseConnectionsNamed(const std::string& connection_name) {
  std::stringstream lines(
      ShellOutput("rabbitmqctl -q list_connections --no-table-headers pid client_properties"));
  int closed = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find("\"" + connection_name + "\"") == std::string::npos) continue;
    std::string pid = line.substr(0, line.find('\t'));
    int rc = std::system(
        ("rabbitmqctl -q close_connection '" + pid + "' 'closed by a test' >/dev/null").c_str());
    if (rc == 0) ++closed;
  }
  return closed;
}

struct QueueCounts {
  long ready = -1;
  long unacked = -1;
};

// Ready and unacknowledged messages of a queue, as RabbitMQ reports them.
inline QueueCounts RabbitmqctlQueueCounts(const std::string& queue) {
  std::stringstream lines(ShellOutput(
      "rabbitmqctl -q list_queues --no-table-headers name messages_ready messages_unacknowledged"));
  for (std::string line; std::getline(lines, line);) {
    std::stringstream fields(line);
    std::string name;
    QueueCounts c;
    if (fields >> name >> c.ready >> c.unacked && name == queue) return c;
  }
  return {};
}

}  // namespace cm::testing
