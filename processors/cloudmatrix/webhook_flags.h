#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "processors/webhooks/webhooks_options.h"

namespace cm::cloudmatrix {

// Webhook delivery (README "Webhooks"); a backfill never sends.
struct WebhookFlags {
  bool allow_http = false;      // http:// endpoints may be registered
  std::string allow_addresses;  // CIDRs delivered to although not public (tests, private nets)
  std::string ca_file;          // extra CA certificates to trust (PEM)
  size_t concurrency = 16;      // attempts in flight at once
  size_t endpoint_concurrency = 4;
  std::string timeout = "30s";
  std::string max_age = "24h";
  int max_attempts = 0;
  std::string backoff_base = "1s";
  std::string backoff_max = "1h";
  int circuit_failures = 5;
  std::string circuit_cooldown = "60s";
  int circuit_successes = 2;
};

void AddWebhookFlags(CLI::App* cmd, WebhookFlags& f);

// The webhooks application's options the flags describe, with a started sender when it
// `sends` (not in a backfill, nor in another topology); nullopt (after saying why) when they
// are inconsistent.
std::optional<webhooks::WebhooksOptions> WebhooksFromFlags(const WebhookFlags& f,
                                                           const std::string& bootstrap,
                                                           bool sends);

}  // namespace cm::cloudmatrix
