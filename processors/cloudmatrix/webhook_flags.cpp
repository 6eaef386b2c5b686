#include "processors/cloudmatrix/webhook_flags.h"

#include <iostream>

#include "processors/cloudmatrix/webhook_attempt_log.h"
#include "processors/cloudmatrix/webhook_transport_http.h"
#include "processors/webhooks/webhook_sender.h"
#include "topology/common/units.h"

namespace cm::cloudmatrix {

void AddWebhookFlags(CLI::App* cmd, WebhookFlags& f) {
  cmd->add_flag("--webhook-allow-http", f.allow_http,
                "let endpoints be http:// (https:// only by default)")
      ->envname("CM_WEBHOOK_ALLOW_HTTP");
  cmd->add_option("--webhook-allow-addresses", f.allow_addresses,
                  "comma-separated CIDRs webhooks may be delivered to although they are not "
                  "public (loopback, private, ...): for tests and private receivers")
      ->envname("CM_WEBHOOK_ALLOW_ADDRESSES");
  cmd->add_option("--webhook-ca-file", f.ca_file,
                  "PEM file of CA certificates trusted for webhook endpoints besides the system's")
      ->envname("CM_WEBHOOK_CA_FILE");
  cmd->add_option("--webhook-concurrency", f.concurrency, "webhook attempts in flight at once")
      ->envname("CM_WEBHOOK_CONCURRENCY")
      ->capture_default_str();
  cmd->add_option("--webhook-endpoint-concurrency", f.endpoint_concurrency,
                  "webhook attempts in flight to one endpoint at once")
      ->envname("CM_WEBHOOK_ENDPOINT_CONCURRENCY")
      ->capture_default_str();
  cmd->add_option("--webhook-timeout", f.timeout,
                  "one attempt's deadline: connect, TLS, send and the whole response")
      ->envname("CM_WEBHOOK_TIMEOUT")
      ->capture_default_str();
  cmd->add_option("--webhook-max-age", f.max_age,
                  "a delivery not made this long after its event is given up (failed)")
      ->envname("CM_WEBHOOK_MAX_AGE")
      ->capture_default_str();
  cmd->add_option("--webhook-max-attempts", f.max_attempts,
                  "attempts after which a delivery is given up (0: only --webhook-max-age)")
      ->envname("CM_WEBHOOK_MAX_ATTEMPTS")
      ->capture_default_str();
  cmd->add_option("--webhook-backoff-base", f.backoff_base, "the first retry's delay; doubles")
      ->envname("CM_WEBHOOK_BACKOFF_BASE")
      ->capture_default_str();
  cmd->add_option("--webhook-backoff-max", f.backoff_max, "the longest delay between retries")
      ->envname("CM_WEBHOOK_BACKOFF_MAX")
      ->capture_default_str();
  cmd->add_option("--webhook-circuit-failures", f.circuit_failures,
                  "consecutive failures that open an endpoint's circuit")
      ->envname("CM_WEBHOOK_CIRCUIT_FAILURES")
      ->capture_default_str();
  cmd->add_option("--webhook-circuit-cooldown", f.circuit_cooldown,
                  "how long an open circuit waits before a probe (half-open)")
      ->envname("CM_WEBHOOK_CIRCUIT_COOLDOWN")
      ->capture_default_str();
  cmd->add_option("--webhook-circuit-successes", f.circuit_successes,
                  "successful probes that close a half-open circuit")
      ->envname("CM_WEBHOOK_CIRCUIT_SUCCESSES")
      ->capture_default_str();
}

std::optional<webhooks::WebhooksOptions> WebhooksFromFlags(const WebhookFlags& f,
                                                           const std::string& bootstrap,
                                                           bool sends) {
  webhooks::WebhooksOptions w;
  w.allow_http = f.allow_http;
  struct Duration {
    const char* flag;
    const std::string& text;
    int64_t* target;
  };
  for (const Duration& d :
       {Duration{"--webhook-timeout", f.timeout, &w.timeout_ms},
        Duration{"--webhook-max-age", f.max_age, &w.retry.max_age_ms},
        Duration{"--webhook-backoff-base", f.backoff_base, &w.retry.base_delay_ms},
        Duration{"--webhook-backoff-max", f.backoff_max, &w.retry.max_delay_ms},
        Duration{"--webhook-circuit-cooldown", f.circuit_cooldown, &w.circuit.cooldown_ms}}) {
    auto parsed = topology::ParseDuration(d.text);
    if (!parsed.ok() || parsed->count() <= 0) {
      std::cerr << d.flag << ": expected a positive duration like 30s\n";
      return std::nullopt;
    }
    *d.target = parsed->count();
  }
  w.retry.max_attempts = f.max_attempts;
  w.circuit.failure_threshold = f.circuit_failures;
  w.circuit.success_threshold = f.circuit_successes;
  if (auto s = w.Validate(); !s.ok()) {
    std::cerr << s.message() << '\n';
    return std::nullopt;
  }
  auto policy = http::AddressPolicy::FromAllowList(f.allow_addresses);
  if (!policy.ok()) {
    std::cerr << "--webhook-allow-addresses: " << policy.status().message() << '\n';
    return std::nullopt;
  }
  if (!sends) return w;
  if (f.concurrency == 0 || f.endpoint_concurrency == 0) {
    std::cerr << "--webhook-concurrency and --webhook-endpoint-concurrency must be at least 1\n";
    return std::nullopt;
  }
  auto log = KafkaAttemptLog::Create(bootstrap, w.attempts_topic);
  if (!log.ok()) {
    std::cerr << "webhook attempt log: " << log.status().message() << '\n';
    return std::nullopt;
  }
  http::DeliveryClientOptions client;
  client.allow_http = f.allow_http;
  client.policy = std::move(policy).value();
  client.ca_file = f.ca_file;
  // No more idle connections than attempts can be in flight: each one may hold a thread of a
  // thread-per-connection receiver.
  client.max_idle_connections = f.concurrency;
  w.sender = std::make_shared<webhooks::WebhookSender>(
      std::make_unique<HttpWebhookTransport>(std::move(client)), std::move(log).value(),
      webhooks::WebhookSenderOptions{f.concurrency, f.endpoint_concurrency, 4096});
  return w;
}

}  // namespace cm::cloudmatrix
