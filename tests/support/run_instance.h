#pragma once

// A `cmstream run` process as e2e tests see it: its HTTP port, whether it is ready, and figures
// of its /metrics. Each restart of the process is a new incarnation with figures from zero.
#include <httplib.h>

#include <cstdint>
#include <memory>
#include <regex>
#include <string>

#include "child_process.h"

namespace cm::testing {

struct RunInstance {
  std::string id;
  int port;
  std::unique_ptr<ChildProcess> process;

  bool Ready() const {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(1);
    auto r = c.Get("/ready");
    return r && r->status == 200;
  }
  // A figure of this incarnation's /metrics (thread 0), 0 when it does not answer.
  uint64_t Metric(const std::string& name) const {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(1);
    auto r = c.Get("/metrics");
    if (!r || r->status != 200) return 0;
    std::smatch m;
    std::regex line(name + R"(\{thread="0"\} (\d+))");
    return std::regex_search(r->body, m, line) ? std::stoull(m[1]) : 0;
  }
  uint64_t Processed() const { return Metric("cmstream_records_processed_total"); }
  uint64_t Commits() const { return Metric("cmstream_commit_latency_seconds_count"); }
};

}  // namespace cm::testing
