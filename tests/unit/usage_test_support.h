#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "processors/usage/metric_catalog.h"
#include "processors/usage/time_util.h"
#include "processors/usage/usage_commands.h"
#include "processors/usage/usage_options.h"
#include "processors/usage/usage_queries.h"
#include "processors/usage/usage_stores.h"
#include "processors/usage/usage_topology.h"
#include "topology/processor/topology.h"
#include "topology/testing/topology_test_driver.h"

namespace cm::usage::testing {

using nlohmann::json;

inline constexpr char kEvents[] = "cloudmatrix.events";
inline constexpr char kCommands[] = "cloudmatrix.commands";
inline constexpr char kAlerts[] = "cloudmatrix.quota-alerts";
inline constexpr char kDlq[] = "cloudmatrix.dlq";

inline int64_t Ms(const std::string& iso) {
  auto t = ParseTimestampString(iso);
  if (!t.ok()) throw std::invalid_argument(t.status().ToString());
  return *t;
}

inline json Ev(const std::string& id, const std::string& org, const std::string& type, int64_t ts,
               json extra = json::object()) {
  json e = {{"eventId", id},
            {"organizationId", org},
            {"eventType", type},
            {"timestamp", FormatTimestamp(ts)}};
  for (auto it = extra.begin(); it != extra.end(); ++it) e[it.key()] = it.value();
  return e;
}

template <typename T>
T Ok(state::Result<T> r) {
  if (!r.ok()) throw std::runtime_error("unexpected error: " + r.status().ToString());
  return std::move(r).value();
}

// A usage topology on the test driver, with helpers to pipe JSON and query an org's task.
class UsageHarness {
 public:
  explicit UsageHarness(UsageOptions options = {}, int32_t partitions = 3)
      : options_(std::make_unique<UsageOptions>(std::move(options))) {
    topology::TopologyBuilder b;
    auto s = AddUsageTopology(b, *options_);
    if (!s.ok()) throw std::runtime_error(s.ToString());
    auto built = b.Build("usage-test");
    if (!built.ok()) throw std::runtime_error(built.status().ToString());
    topology_ = std::make_unique<topology::Topology>(std::move(built).value());
    topology::TestDriverOptions o;
    o.partitions = partitions;
    auto d = topology::TopologyTestDriver::Create(*topology_, o);
    if (!d.ok()) throw std::runtime_error(d.status().ToString());
    driver_ = std::move(d).value();
  }

  topology::TopologyTestDriver& driver() { return *driver_; }
  const UsageOptions& options() const { return *options_; }

  // Pipes an event keyed by its organizationId (or `key`) with the given record timestamp.
  void Event(const json& e, int64_t record_ts, std::string key = "") {
    if (key.empty()) key = e.value("organizationId", std::string());
    driver_->PipeInput(kEvents, key, e.dump(), record_ts);
  }
  void RawEvent(const std::string& key, const std::string& bytes, int64_t record_ts) {
    driver_->PipeInput(kEvents, key, bytes, record_ts);
  }
  json Command(const std::string& org, const std::string& type, const std::string& command_id,
               json fields, int64_t record_ts) {
    json c = std::move(fields);
    c["type"] = type;
    c["commandId"] = command_id;
    c["issuedAt"] = FormatTimestamp(record_ts);
    if (!org.empty()) c["organizationId"] = org;
    driver_->PipeInput(kCommands, org, c.dump(), record_ts);
    return CommandResult(org, command_id);
  }
  json CommandResult(const std::string& org, const std::string& command_id) {
    auto r = topology::CommandResults::Read(*Views(org).command_results, command_id);
    return r ? *r : json();
  }

  UsageStoreViews Views(const std::string& org) {
    return UsageStoreViews::Live(driver_->TaskFor(kEvents, org).state());
  }
  UsageQueries Queries(const std::string& org) { return UsageQueries(*options_, Views(org)); }

  std::vector<topology::Record> Dlq() { return driver_->ReadOutput(kDlq); }
  std::vector<json> Alerts() {
    std::vector<json> out;
    for (const auto& r : driver_->ReadOutput(kAlerts)) out.push_back(json::parse(r.value));
    return out;
  }

  json Metrics(const std::string& org, int64_t start, int64_t end, const std::string& granularity,
               std::vector<std::string> metrics, std::vector<std::string> dims = {}) {
    AggregationQuery q;
    q.start_time = start;
    q.end_time = end;
    q.granularity = *ParseGranularity(granularity);
    q.metric_types = std::move(metrics);
    q.dimensions = std::move(dims);
    return Ok(Queries(org).GetAggregatedMetrics(org, q));
  }
  json Total(const std::string& org, const std::string& metric, int64_t start, int64_t end,
             const std::string& granularity) {
    return Metrics(org, start, end, granularity, {metric})["totals"][metric];
  }

 private:
  std::unique_ptr<UsageOptions> options_;
  std::unique_ptr<topology::Topology> topology_;
  std::unique_ptr<topology::TopologyTestDriver> driver_;
};

inline std::string Reason(const topology::Record& r) {
  auto h = r.FindHeader("dlq-reason");
  return h ? std::string(*h) : std::string();
}

}  // namespace cm::usage::testing
