#pragma once

// Usage figures as HTTP reports them and as Postgres snapshots hold them, for tests that
// compare the two.
#include <httplib.h>
#include <unistd.h>

#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <random>
#include <string>

#include "processors/usage/time_util.h"
#include "topology/common/wall_clock.h"

namespace cm::testing {

inline const char* DatabaseUrl() {
  const char* env = std::getenv("DATABASE_URL");
  return env ? env : "postgresql://cmstream:cmstream@127.0.0.1:5432/cmstream";
}

// A schema name no other test or agent uses.
inline std::string UniqueSchema(const std::string& prefix) {
  std::random_device rd;
  return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(rd() % 1000000);
}

inline void DropSchema(const std::string& schema) {
  pqxx::connection conn(DatabaseUrl());
  pqxx::nontransaction tx(conn);
  tx.exec("DROP SCHEMA IF EXISTS " + tx.quote_name(schema) + " CASCADE");
}

// Ungrouped figures per (metric, bucket start).
using Points = std::map<std::pair<std::string, int64_t>, double>;

// GET /v1/usage/orgs/{org}/metrics over the three days around now; empty unless 200.
inline Points HttpPoints(httplib::Client& client, const std::string& org,
                         const std::string& granularity) {
  const int64_t day = topology::WallClockMs() / usage::kDayMs * usage::kDayMs;
  auto r = client.Get("/v1/usage/orgs/" + org + "/metrics?granularity=" + granularity +
                      "&startTime=" + std::to_string(day - usage::kDayMs) +
                      "&endTime=" + std::to_string(day + 2 * usage::kDayMs));
  Points out;
  if (!r || r->status != 200) return out;
  const nlohmann::json body = nlohmann::json::parse(r->body);
  for (const auto& p : body["dataPoints"]) {
    out[{p["metricType"].get<std::string>(),
         usage::ParseTimestampString(p["timestamp"].get<std::string>()).value()}] =
        p["value"].get<double>();
  }
  return out;
}

// The ungrouped rows of <schema>.usage_aggregates for an organization.
inline Points PgPoints(const std::string& schema, const std::string& org,
                       const std::string& granularity) {
  pqxx::connection conn(DatabaseUrl());
  pqxx::read_transaction tx(conn);
  auto rows = tx.exec_params(
      "SELECT metric_type, (extract(epoch FROM bucket_start) * 1000)::bigint, value FROM " +
          tx.quote_name(schema) +
          ".usage_aggregates WHERE organization_id = $1 AND granularity = $2 AND "
          "dimension_key = ''",
      org, granularity);
  Points out;
  for (const auto& row : rows) {
    out[{row[0].as<std::string>(), row[1].as<int64_t>()}] = row[2].as<double>();
  }
  return out;
}

// A metric summed over its buckets.
inline double MetricSum(const Points& points, const std::string& metric) {
  double sum = 0;
  for (const auto& [key, value] : points) sum += key.first == metric ? value : 0;
  return sum;
}

// The "events" metric (every accepted event) summed over day buckets: how many of an
// organization's events have been processed.
inline double EventCount(const Points& day_points) { return MetricSum(day_points, "events"); }

// Whether HTTP reports `n` processed events for every org.
inline bool HttpCountsReach(httplib::Client& client, const std::vector<std::string>& orgs,
                            double n) {
  for (const auto& org : orgs) {
    if (EventCount(HttpPoints(client, org, "day")) != n) return false;
  }
  return true;
}

// Whether Postgres holds exactly what HTTP reports for every org at every granularity.
inline bool PgEqualsHttp(httplib::Client& client, const std::string& schema,
                         const std::vector<std::string>& orgs) {
  for (const auto& org : orgs) {
    for (const char* g : {"minute", "hour", "day"}) {  // ranges are day-aligned
      Points http = HttpPoints(client, org, g);
      if (http.empty() || http != PgPoints(schema, org, g)) return false;
    }
  }
  return true;
}

}  // namespace cm::testing
