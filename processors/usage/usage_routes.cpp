#include "processors/usage/usage_routes.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>

#include "processors/usage/time_util.h"
#include "processors/usage/usage_commands.h"
#include "processors/usage/usage_event.h"
#include "processors/usage/usage_stores.h"
#include "topology/common/json.h"
#include "topology/common/wall_clock.h"
#include "topology/query/idempotency.h"

namespace cm::usage {

using nlohmann::json;
using topology::HttpRequest;
using topology::HttpResponse;

UsageStoreViews CommittedUsageStores(const topology::ReadOnlyStores& stores) {
  return {stores.KeyValue(kAggregatesStore), stores.KeyValue(kTotalsStore),
          stores.KeyValue(kOrgsStore), stores.KeyValue(kAlertsStore),
          stores.KeyValue(kCommandResultsStore)};
}

namespace {

constexpr auto kCommandTimeout = std::chrono::seconds(10);

HttpResponse Validation(std::string_view message, json details = json::object()) {
  return HttpResponse::Error(400, "validation_error", message, std::move(details));
}

template <typename T>
HttpResponse JsonOr(const state::Result<T>& result, int status = 200) {
  if (!result.ok()) return HttpResponse::FromStatus(result.status());
  return HttpResponse::Json(status, result.value());
}

constexpr const char* kRead = "usage:read";
using topology::RouteAccess;
RouteAccess Access(const char* scope, const char* org_param = "") {
  return RouteAccess::Scope(scope, org_param);
}
constexpr const char* kWrite = "usage:write";

// The answer for another organization's data: as if it did not exist (no existence oracle).
HttpResponse NoSuchOrganization() {
  return HttpResponse::Error(404, "not_found", "no such organization");
}

struct Context {
  const topology::KafkaStreams& streams;
  const topology::QueryRouter& router;
  const topology::CommandSender& commands;
  ProducerFn append_event;
  UsageOptions options;

  int Subtopology() const { return *streams.topology().SubTopologyOfSource(options.events_topic); }
  topology::TaskId TaskOf(const std::string& org) const {
    return streams.TaskForKey(Subtopology(), org);
  }

  // Runs `query` over the committed stores of the organization's task.
  HttpResponse Query(const HttpRequest& req,
                     const std::function<HttpResponse(const UsageQueries&)>& query) const {
    const std::string& org = req.path_params.at("org");
    if (auto s = CheckOrganizationId(org, options.limits, "the organization in the path"); !s.ok())
      return Validation(s.message());
    return router.Route(req, TaskOf(org), [&](const topology::ReadOnlyStores& stores) {
      UsageStoreViews views = CommittedUsageStores(stores);
      if (!views.complete())
        return HttpResponse::Error(500, "internal", "the usage stores are missing on this task");
      UsageQueries queries(options, views);
      return query(queries);
    });
  }

  // The command's id and request hash; an Idempotency-Key is an id like any other, so it
  // obeys --max-id-bytes.
  state::Result<topology::CommandIdentity> Identify(const HttpRequest& req,
                                                    const std::string& org) const {
    if (req.Header("Idempotency-Key").size() > options.limits.max_id_bytes)
      return state::Status::InvalidArgument("Idempotency-Key must be at most " +
                                            std::to_string(options.limits.max_id_bytes) + " bytes");
    return topology::IdentifyCommand(req, org);
  }

  // Appends a usage command for the organization and answers with its stored result.
  HttpResponse Command(const HttpRequest& req, const char* type, json fields) const {
    const std::string& org = req.path_params.at("org");
    if (auto s = CheckOrganizationId(org, options.limits, "the organization in the path"); !s.ok())
      return Validation(s.message());
    auto identity = Identify(req, org);
    if (!identity.ok()) return Validation(identity.status().message());
    return CommandOnTask(req, type, std::move(fields), org, TaskOf(org), *identity);
  }

  // Appends a command to `task`'s partition (on the instance that runs it) and answers with
  // its stored result. An empty org addresses every organization of the task.
  HttpResponse CommandOnTask(const HttpRequest& req, const char* type, json fields,
                             const std::string& org, const topology::TaskId& task,
                             const topology::CommandIdentity& identity) const {
    return router.RouteToOwner(req, task, [&] {
      return commands.Submit({options.commands_topic, org, task, kCommandResultsStore, type, org,
                              identity, std::move(fields)},
                             kCommandTimeout);
    });
  }
};

// The request body as a JSON object (an empty body is an empty object).
std::optional<json> BodyObject(const HttpRequest& req, const UsageLimits& limits) {
  if (req.body.empty()) return json::object();
  auto body = topology::ParseJson(req.body, limits.max_json_depth);
  if (!body.ok() || !body->is_object()) return std::nullopt;
  return std::move(body).value();
}

}  // namespace

void AddUsageRoutes(topology::HttpServer& server, const topology::KafkaStreams& streams,
                    const topology::QueryRouter& router, const topology::CommandSender& commands,
                    ProducerFn append_event, const UsageOptions& options) {
  if (!append_event) {
    append_event = [&commands](const std::string& topic, const std::string& key,
                               const std::string& value, int32_t partition) {
      return commands.Append(topic, key, value, partition);
    };
  }
  auto ctx = std::make_shared<const Context>(
      Context{streams, router, commands, std::move(append_event), options});

  server.Route("POST", "/v1/usage/events", Access(kWrite), [ctx](const HttpRequest& req) {
    const UsageOptions& o = ctx->options;
    auto parsed = ParseUsageEventBatch(req.body, topology::WallClockMs(), &o.catalog,
                                       o.event_time_bounds, o.limits);
    if (!parsed.ok()) {
      return Validation(parsed.status().message(), {{"reason", parsed.status().message()}});
    }
    const bool batch = parsed->batch;
    const int sub = ctx->Subtopology();
    std::vector<topology::CommandSender::Message> messages;
    json ids = json::array();
    for (const UsageEvent& e : parsed->events) {
      if (!req.principal->CanAccess(e.organization_id)) return NoSuchOrganization();
      std::string value = e.ToJson().dump();
      // Checked for every event before any is appended: a refused batch appends nothing.
      if (value.size() > o.limits.max_event_bytes) {
        return Validation((batch ? "events[" + std::to_string(messages.size()) + "]" : "event") +
                          " is larger than " + std::to_string(o.limits.max_event_bytes) + " bytes");
      }
      messages.push_back({o.events_topic, e.organization_id, std::move(value),
                          ctx->streams.TaskForKey(sub, e.organization_id).partition});
      ids.push_back(e.event_id);
    }
    for (const auto& m : messages) {
      if (auto s = ctx->append_event(m.topic, m.key, m.value, m.partition); !s.ok())
        return HttpResponse::FromStatus(s);
    }
    if (batch) return HttpResponse::Json(202, {{"recorded", ids.size()}, {"eventIds", ids}});
    return HttpResponse::Json(202, {{"recorded", true}, {"eventId", ids[0]}});
  });

  server.Route("GET", "/v1/usage/orgs/{org}/metrics", Access(kRead, "org"),
               [ctx](const HttpRequest& req) {
                 auto query = ParseAggregationQuery(req.query);
                 if (!query.ok()) return HttpResponse::FromStatus(query.status());
                 return ctx->Query(req, [&](const UsageQueries& q) {
                   return JsonOr(q.GetAggregatedMetrics(req.path_params.at("org"), *query));
                 });
               });

  server.Route("GET", "/v1/usage/orgs/{org}/quota", Access(kRead, "org"),
               [ctx](const HttpRequest& req) {
                 const int64_t now = topology::WallClockMs();
                 return ctx->Query(req, [&](const UsageQueries& q) {
                   return JsonOr(q.GetQuotaStatus(req.path_params.at("org"), now));
                 });
               });

  server.Route("GET", "/v1/usage/orgs/{org}/quota/check", Access(kRead, "org"),
               [ctx](const HttpRequest& req) {
                 auto check = ParseQuotaCheckQuery(req.query);
                 if (!check.ok()) return HttpResponse::FromStatus(check.status());
                 const int64_t now = topology::WallClockMs();
                 return ctx->Query(req, [&](const UsageQueries& q) {
                   return JsonOr(q.CheckQuota(req.path_params.at("org"), check->metric_type,
                                              check->amount, now));
                 });
               });

  server.Route("GET", "/v1/usage/orgs/{org}/report", Access(kRead, "org"),
               [ctx](const HttpRequest& req) {
                 auto report = ParseReportQuery(req.query);
                 if (!report.ok()) return HttpResponse::FromStatus(report.status());
                 const int64_t now = topology::WallClockMs();
                 return ctx->Query(req, [&](const UsageQueries& q) {
                   const std::string& org = req.path_params.at("org");
                   const int64_t start = report->period_start, end = report->period_end;
                   if (!report->csv) return JsonOr(q.GenerateUsageReport(org, start, end, now));
                   auto csv = q.GenerateUsageReportCsv(org, start, end, now);
                   if (!csv.ok()) return HttpResponse::FromStatus(csv.status());
                   HttpResponse r;
                   r.status = 200;
                   r.content_type = "text/csv";
                   r.body = *csv;
                   return r;
                 });
               });

  server.Route("GET", "/v1/usage/orgs/{org}/dashboard", Access(kRead, "org"),
               [ctx](const HttpRequest& req) {
                 const int64_t now = topology::WallClockMs();
                 return ctx->Query(req, [&](const UsageQueries& q) {
                   return JsonOr(q.GetDashboardData(req.path_params.at("org"), now));
                 });
               });

  server.Route("GET", "/v1/usage/orgs/{org}/alerts", Access(kRead, "org"),
               [ctx](const HttpRequest& req) {
                 return ctx->Query(req, [&](const UsageQueries& q) {
                   return JsonOr(q.ListAlertSubscriptions(req.path_params.at("org")));
                 });
               });

  // Plans set limits: an organization's own key must not raise them (billing sets them).
  server.Route("PUT", "/v1/usage/orgs/{org}/plan", Access(topology::Principal::kAdminScope, "org"),
               [ctx](const HttpRequest& req) {
                 auto body = BodyObject(req, ctx->options.limits);
                 if (!body)
                   return Validation("the body must be a JSON object {plan, billingAnchorDay?}");
                 json fields = json::object();
                 for (const char* f : {"plan", "billingAnchorDay"})
                   if (body->contains(f)) fields[f] = (*body)[f];
                 if (auto error = CheckSetPlan(ctx->options.catalog, fields))
                   return HttpResponse::Json(400, *error);
                 return ctx->Command(req, kSetPlanCommand, std::move(fields));
               });

  // rollupMetrics. With organizationId: that organization's task. Without: one command per
  // partition (each task rolls up all of its organizations), run in parallel on the instances
  // that own them; the answer sums them. A copy forwarded to an owner carries ?partition=N.
  // An organization's key rolls up its own organization only (organizationId defaults to it);
  // every organization at once takes an admin key.
  server.Route("POST", "/v1/usage/rollups", Access(kWrite), [ctx](const HttpRequest& req) {
    auto body = BodyObject(req, ctx->options.limits);
    if (!body)
      return Validation(
          "the body must be a JSON object {metricType, cutoffTime, granularities?, "
          "organizationId?}");
    json fields = json::object();
    for (const char* f : {"metricType", "cutoffTime", "granularities"})
      if (body->contains(f)) fields[f] = (*body)[f];
    const topology::Principal& principal = *req.principal;
    if (!body->contains("organizationId") && !principal.organization.empty())
      (*body)["organizationId"] = principal.organization;
    if (body->contains("organizationId")) {
      const json& org_json = (*body)["organizationId"];
      if (!org_json.is_string()) return Validation("organizationId must be a string");
      const std::string org = org_json.get<std::string>();
      if (auto s = CheckOrganizationId(org, ctx->options.limits); !s.ok())
        return Validation(s.message());
      if (!principal.CanAccess(org)) return NoSuchOrganization();
      auto identity = ctx->Identify(req, org);
      if (!identity.ok()) return Validation(identity.status().message());
      return ctx->CommandOnTask(req, kRollupCommand, fields, org, ctx->TaskOf(org), *identity);
    }
    auto id = ctx->Identify(req, "");
    if (!id.ok()) return Validation(id.status().message());
    auto on_partition = [&](int32_t p) {
      return topology::CommandIdentity{id->command_id + "#" + std::to_string(p), id->request_hash};
    };
    const int sub = ctx->Subtopology();
    const int32_t partitions = ctx->streams.PartitionCount(sub);
    if (auto it = req.query.find("partition"); it != req.query.end()) {
      int32_t p = -1;
      auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), p);
      if (ec != std::errc() || end != it->second.data() + it->second.size() || p < 0 ||
          p >= partitions)
        return Validation("partition must be 0.." + std::to_string(partitions - 1));
      return ctx->CommandOnTask(req, kRollupCommand, fields, "", topology::TaskId{sub, p},
                                on_partition(p));
    }
    std::vector<std::future<HttpResponse>> parts;
    for (int32_t p = 0; p < partitions; ++p) {
      parts.push_back(std::async(std::launch::async, [&, p] {
        HttpRequest one = req;
        one.query["partition"] = std::to_string(p);
        return ctx->CommandOnTask(one, kRollupCommand, fields, "", topology::TaskId{sub, p},
                                  on_partition(p));
      }));
    }
    json sum = json::object();
    std::optional<HttpResponse> failure;
    for (auto& part : parts) {
      HttpResponse r = part.get();
      json b = json::parse(r.body, nullptr, false);
      if (r.status != 200 || !b.is_object()) {
        if (!failure) failure = std::move(r);
        continue;
      }
      if (sum.empty()) {
        sum = b;
        continue;
      }
      for (const char* f : {"rolledUp", "errors", "organizations"})
        if (b.contains(f) && b[f].is_number()) sum[f] = sum.value(f, 0) + b[f].get<int64_t>();
    }
    // A partial broadcast is reported as the first failure: retrying with the same
    // Idempotency-Key completes the missing partitions and leaves the done ones alone.
    if (failure) return *failure;
    sum["partitions"] = partitions;
    return HttpResponse::Json(200, sum);
  });

  server.Route(
      "POST", "/v1/usage/orgs/{org}/alerts", Access(kWrite, "org"), [ctx](const HttpRequest& req) {
        auto body = BodyObject(req, ctx->options.limits);
        if (!body)
          return Validation(
              "the body must be a JSON object {metricType, threshold|thresholds, "
              "notificationChannels}");
        json fields = json::object();
        for (const char* f : {"metricType", "threshold", "thresholds", "notificationChannels"})
          if (body->contains(f)) fields[f] = (*body)[f];
        if (auto error = CheckSubscribeAlerts(ctx->options.catalog, fields))
          return HttpResponse::Json(400, *error);
        return ctx->Command(req, kSubscribeAlertsCommand, std::move(fields));
      });
}

}  // namespace cm::usage
