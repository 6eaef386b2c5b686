// The route matcher and query parsing of the HTTP API. Each input is a request target
// ("/v1/usage/orgs/acme/report?periodStart=..."), at most as long as cpp-httplib accepts
// (CPPHTTPLIB_REQUEST_URI_MAX_LENGTH). It is split and decoded with cpp-httplib's own functions
// as the server does, matched against every route of the usage and counting applications
// with RoutePattern (what HttpServer registers), and the matched route's parameters go
// through the parsers its handler calls before any store is read. Invariants: a capture
// never holds '/', matching is unambiguous, every refusal is a 4xx value whose JSON body
// renders, and what is accepted lies within the documented bounds.
#include <httplib.h>

#include <cmath>
#include <vector>

#include "fuzz_check.h"
#include "processors/usage/time_util.h"
#include "processors/usage/usage_event.h"
#include "processors/usage/usage_queries.h"
#include "topology/query/http_server.h"
#include "topology/query/route_pattern.h"

namespace {

// The GET routes whose handlers parse a path or query before they read a store (the
// applications register them in processors/usage/usage_routes.cpp and
// processors/counting/counting_routes.cpp), and the engine's own.
const std::vector<cm::topology::RoutePattern>& Routes() {
  static const std::vector<cm::topology::RoutePattern> routes = {
      cm::topology::RoutePattern("/health"),
      cm::topology::RoutePattern("/metrics"),
      cm::topology::RoutePattern("/v1/usage/orgs/{org}/metrics"),
      cm::topology::RoutePattern("/v1/usage/orgs/{org}/quota"),
      cm::topology::RoutePattern("/v1/usage/orgs/{org}/quota/check"),
      cm::topology::RoutePattern("/v1/usage/orgs/{org}/report"),
      cm::topology::RoutePattern("/v1/usage/orgs/{org}/dashboard"),
      cm::topology::RoutePattern("/v1/usage/orgs/{org}/alerts"),
      cm::topology::RoutePattern("/v1/counts/{key}"),
  };
  return routes;
}

// A refusal as the handler answers it: FromStatus, a 4xx whose body is JSON.
void Refused(const cm::state::Status& s) {
  FUZZ_CHECK(s.code() == cm::state::Status::Code::kInvalidArgument, s.ToString());
  auto r = cm::topology::HttpResponse::FromStatus(s);
  FUZZ_CHECK(r.status == 400, s.ToString());
  FUZZ_CHECK(nlohmann::json::accept(r.body), r.body);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > CPPHTTPLIB_REQUEST_URI_MAX_LENGTH) return 0;  // answered 414 by cpp-httplib
  const std::string target(cm::fuzz::Bytes(data, size));
  // As cpp-httplib's Server::parse_request_line: path before '?', decoded; the query after
  // it; a second '?' is a bad request.
  const size_t q = target.find('?');
  if (q != std::string::npos && target.find('?', q + 1) != std::string::npos) return 0;
  const std::string path = httplib::detail::decode_url(target.substr(0, q), false);
  httplib::Params params;
  if (q != std::string::npos && q + 1 < target.size())
    httplib::detail::parse_query_text(target.substr(q + 1), params);
  // HttpServer copies them into a map: the last value of a repeated name wins.
  std::map<std::string, std::string> query;
  for (const auto& [k, v] : params) query[k] = v;

  const cm::topology::RoutePattern* matched = nullptr;
  std::map<std::string, std::string> captures;
  for (const auto& route : Routes()) {
    auto m = route.Match(path);
    if (!m) continue;
    FUZZ_CHECK(matched == nullptr,
               path + " matches " + matched->pattern() + " and " + route.pattern());
    matched = &route;
    captures = std::move(*m);
    for (const auto& [name, value] : captures)
      FUZZ_CHECK(!value.empty() && value.find('/') == std::string::npos, name + "=" + value);
  }
  if (matched == nullptr) return 0;  // 404 (or 405 for another method's route)

  const std::string& p = matched->pattern();
  if (p.rfind("/v1/usage/orgs/", 0) == 0) {
    if (auto s = cm::usage::CheckOrganizationId(captures.at("org"), cm::usage::UsageLimits{},
                                                "the organization in the path");
        !s.ok()) {
      Refused(s);
      return 0;
    }
  }
  if (p == "/v1/usage/orgs/{org}/metrics") {
    auto parsed = cm::usage::ParseAggregationQuery(query);
    if (!parsed.ok()) {
      Refused(parsed.status());
      return 0;
    }
    FUZZ_CHECK(
        parsed->start_time >= cm::usage::kMinTimeMs && parsed->end_time <= cm::usage::kMaxTimeMs,
        "a time outside the documented years");
  } else if (p == "/v1/usage/orgs/{org}/quota/check") {
    auto parsed = cm::usage::ParseQuotaCheckQuery(query);
    if (!parsed.ok()) {
      Refused(parsed.status());
      return 0;
    }
    FUZZ_CHECK(std::isfinite(parsed->amount) && parsed->amount >= 0, "amount out of bounds");
    FUZZ_CHECK(!parsed->metric_type.empty(), "empty metricType accepted");
  } else if (p == "/v1/usage/orgs/{org}/report") {
    auto parsed = cm::usage::ParseReportQuery(query);
    if (!parsed.ok()) {
      Refused(parsed.status());
      return 0;
    }
    FUZZ_CHECK(parsed->period_start >= cm::usage::kMinTimeMs &&
                   parsed->period_end <= cm::usage::kMaxTimeMs,
               "a time outside the documented years");
  }
  return 0;
}
