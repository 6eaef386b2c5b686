#include "processors/webhooks/webhooks_routes.h"

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <variant>

#include "processors/webhooks/webhook_signature.h"
#include "processors/webhooks/webhook_views.h"
#include "processors/webhooks/webhooks_commands.h"
#include "processors/webhooks/webhooks_queries.h"
#include "processors/webhooks/webhooks_stores.h"
#include "topology/common/entity_id.h"
#include "topology/common/json.h"
#include "topology/common/timestamp.h"
#include "topology/common/wall_clock.h"
#include "topology/query/idempotency.h"

namespace cm::webhooks {

using nlohmann::json;
using topology::HttpRequest;
using topology::HttpResponse;
using topology::RouteAccess;

namespace {

constexpr auto kCommandTimeout = std::chrono::seconds(10);
// How often a route that awaits an attempt (retry, test) looks at the delivery again.
constexpr auto kAttemptPoll = std::chrono::milliseconds(50);
constexpr const char* kRead = "webhooks:read";
constexpr const char* kWrite = "webhooks:write";

HttpResponse Validation(const std::string& message, json details = json::object()) {
  return HttpResponse::Error(400, "validation_error", message, std::move(details));
}

std::optional<size_t> ParseLimit(const HttpRequest& req, size_t fallback) {
  auto it = req.query.find("limit");
  if (it == req.query.end()) return fallback;
  const std::string& text = it->second;
  if (text.empty() || text.size() > 3 || text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  const int n = std::stoi(text);
  if (n < 1 || n > 500) return std::nullopt;
  return static_cast<size_t>(n);
}

std::string Query(const HttpRequest& req, const std::string& name) {
  auto it = req.query.find(name);
  return it == req.query.end() ? std::string() : it->second;
}

HttpResponse JsonOr(const state::Result<json>& r) {
  if (!r.ok()) return HttpResponse::FromStatus(r.status());
  return HttpResponse::Json(200, r.value());
}

struct Context {
  const topology::KafkaStreams& streams;
  const topology::QueryRouter& router;
  const topology::CommandSender& commands;
  WebhooksOptions options;

  topology::TaskId TaskOf(const std::string& org) const {
    const int sub = *streams.topology().SubTopologyOfSource(options.commands_topic);
    return streams.TaskForKey(sub, org);
  }

  // The organization of an id path parameter (webhook 'w', delivery 'd'), when the caller may
  // see it.
  std::optional<std::string> OrgOf(const HttpRequest& req, const char* param, char tag) const {
    auto org = topology::OrganizationOfEntityId(req.path_params.at(param), tag);
    if (!org || !req.principal->CanAccess(*org) ||
        !topology::CheckId(*org, options.max_id_bytes, "organizationId").ok())
      return std::nullopt;
    return org;
  }

  std::optional<json> Body(const HttpRequest& req) const {
    if (req.body.empty()) return json::object();
    auto body = topology::ParseJson(req.body, static_cast<int>(options.max_json_depth));
    if (!body.ok() || !body->is_object()) return std::nullopt;
    return std::move(body).value();
  }

  // The organization a body-addressed request is for: the body's organizationId, else the
  // key's own.
  std::variant<std::string, HttpResponse> BodyOrg(const HttpRequest& req, const json& body) const {
    std::string org = req.principal->organization;
    if (body.contains("organizationId")) {
      if (!body["organizationId"].is_string())
        return Validation("organizationId must be a string", {{"field", "organizationId"}});
      org = body["organizationId"].get<std::string>();
    }
    if (org.empty()) return Validation("organizationId is required", {{"field", "organizationId"}});
    if (!req.principal->CanAccess(org))
      return HttpResponse::Error(404, "not_found", "no such organization");
    if (auto s = topology::CheckId(org, options.max_id_bytes, "organizationId"); !s.ok())
      return Validation(s.message(), {{"field", "organizationId"}});
    return org;
  }

  HttpResponse Command(const HttpRequest& req, const std::string& org, const char* type,
                       json fields, const topology::CommandIdentity& identity,
                       const std::function<void(json&)>& decorate = nullptr) const {
    if (auto error = CheckCommandFields(type, fields, options))
      return HttpResponse::Json(400, *error);
    const topology::TaskId task = TaskOf(org);
    return router.RouteToOwner(req, task, [&] {
      return commands.Submit({options.commands_topic, org, task, kCommandResultsStore, type, org,
                              identity, std::move(fields)},
                             kCommandTimeout, decorate);
    });
  }

  state::Result<topology::CommandIdentity> Identify(const HttpRequest& req,
                                                    const std::string& org) const {
    if (req.Header("Idempotency-Key").size() > 256)
      return state::Status::InvalidArgument("Idempotency-Key must be at most 256 bytes");
    return topology::IdentifyCommand(req, org);
  }

  HttpResponse Read(const HttpRequest& req, const std::string& org,
                    const std::function<HttpResponse(const WebhooksQueries&)>& query) const {
    return router.Route(req, TaskOf(org), [&](const topology::ReadOnlyStores& stores) {
      WebhooksStoreViews views = WebhooksStoreViews::Committed(stores);
      if (!views.complete())
        return HttpResponse::Error(500, "internal", "the webhooks stores are missing on this task");
      return query(WebhooksQueries(views));
    });
  }

  // After a retry or test command was applied (202 with the delivery's result): waits, on the
  // owning instance, until the attempt it scheduled has an outcome, and answers with the
  // seeds' DeliveryResult; 202 with the pending result when it takes longer than the timeout.
  HttpResponse AwaitAttempt(const HttpRequest& req, const std::string& org,
                            HttpResponse accepted) const {
    if (accepted.status != 202 || Query(req, "wait") == "false") return accepted;
    auto body = json::parse(accepted.body, nullptr, false);
    if (!body.is_object() || !body.contains("deliveryId")) return accepted;
    const std::string id = body["deliveryId"].get<std::string>();
    const int before = body.value("attemptNumber", 0);
    const auto deadline =
        std::chrono::steady_clock::now() +
        std::chrono::milliseconds(options.timeout_ms + options.queue_interval_ms + 2000);
    while (std::chrono::steady_clock::now() < deadline) {
      std::optional<json> delivery;
      router.Route(req, TaskOf(org), [&](const topology::ReadOnlyStores& stores) {
        auto d = WebhooksQueries(WebhooksStoreViews::Committed(stores)).GetDelivery(org, id);
        if (d.ok()) delivery = *d;
        return HttpResponse::Json(200, json::object());
      });
      if (delivery && delivery->value("attemptNumber", 0) > before &&
          delivery->value("status", "") != "in_progress")
        return HttpResponse::Json(200, DeliveryResultView(*delivery));
      std::this_thread::sleep_for(kAttemptPoll);
    }
    return accepted;
  }
};

}  // namespace

void AddWebhooksRoutes(topology::HttpServer& server, const topology::KafkaStreams& streams,
                       const topology::QueryRouter& router, const topology::CommandSender& commands,
                       const WebhooksOptions& options) {
  auto ctx = std::make_shared<const Context>(Context{streams, router, commands, options});
  const RouteAccess read = RouteAccess::Scope(kRead);
  const RouteAccess write = RouteAccess::Scope(kWrite);

  // registerWebhook: the id and the secret are made here (processing never draws randomness).
  server.Route("POST", "/v1/webhooks", write, [ctx](const HttpRequest& req) {
    auto body = ctx->Body(req);
    if (!body) return Validation("the body must be a JSON object");
    auto org = ctx->BodyOrg(req, *body);
    if (auto* error = std::get_if<HttpResponse>(&org)) return *error;
    const std::string& o = std::get<std::string>(org);
    auto identity = ctx->Identify(req, o);
    if (!identity.ok()) return Validation(identity.status().message());
    body->erase("organizationId");
    if (!body->contains("createdBy") || !(*body)["createdBy"].is_string()) {
      const auto& p = *req.principal;
      (*body)["createdBy"] = p.user_id.empty() ? "apikey:" + p.key_id : p.user_id;
    }
    for (const char* internal : {"webhookId", "secret", "newSecret"}) body->erase(internal);
    (*body)["webhookId"] = topology::EntityIdFor(o, 'w', identity->command_id);
    (*body)["secret"] = NewWebhookSecret();
    return ctx->Command(req, o, kRegister, std::move(*body), *identity);
  });

  server.Route("GET", "/v1/webhooks/{id}", read, [ctx](const HttpRequest& req) {
    auto org = ctx->OrgOf(req, "id", 'w');
    if (!org) return HttpResponse::Error(404, "not_found", "no such webhook");
    return ctx->Read(req, *org, [&](const WebhooksQueries& q) {
      return JsonOr(q.GetWebhook(*org, req.path_params.at("id")));
    });
  });

  // The commands on one webhook: {id} goes into the command's fields.
  auto webhook_command = [ctx](const char* type,
                               const std::function<std::optional<HttpResponse>(json&)>& fill) {
    return [ctx, type, fill](const HttpRequest& req) {
      auto org = ctx->OrgOf(req, "id", 'w');
      if (!org) return HttpResponse::Error(404, "not_found", "no such webhook");
      auto body = ctx->Body(req);
      if (!body) return Validation("the body must be a JSON object");
      auto identity = ctx->Identify(req, *org);
      if (!identity.ok()) return Validation(identity.status().message());
      for (const char* internal : {"webhookId", "secret", "newSecret", "eventId"})
        body->erase(internal);
      (*body)["webhookId"] = req.path_params.at("id");
      if (fill) {
        if (auto error = fill(*body)) return *error;
      }
      return ctx->Command(req, *org, type, std::move(*body), *identity);
    };
  };

  server.Route(
      "PATCH", "/v1/webhooks/{id}", write,
      webhook_command(kUpdate, [](json& body) -> std::optional<HttpResponse> {
        if (body.contains("rotateSecret")) {
          if (!body["rotateSecret"].is_boolean())
            return Validation("rotateSecret must be true or false", {{"field", "rotateSecret"}});
          if (body["rotateSecret"].get<bool>()) body["newSecret"] = NewWebhookSecret();
          body.erase("rotateSecret");
        }
        return std::nullopt;
      }));
  server.Route("DELETE", "/v1/webhooks/{id}", write, webhook_command(kDelete, nullptr));
  server.Route("DELETE", "/v1/webhooks/{id}/circuit", write,
               webhook_command(kResetCircuit, nullptr));

  server.Route("POST", "/v1/webhooks/{id}/test", write, [ctx](const HttpRequest& req) {
    auto org = ctx->OrgOf(req, "id", 'w');
    if (!org) return HttpResponse::Error(404, "not_found", "no such webhook");
    auto identity = ctx->Identify(req, *org);
    if (!identity.ok()) return Validation(identity.status().message());
    json fields = {{"webhookId", req.path_params.at("id")},
                   {"eventId", "evt_test_" + identity->command_id}};
    return ctx->AwaitAttempt(req, *org,
                             ctx->Command(req, *org, kSendTest, std::move(fields), *identity));
  });

  server.Route("POST", "/v1/deliveries/{id}/retry", write, [ctx](const HttpRequest& req) {
    auto org = ctx->OrgOf(req, "id", 'd');
    if (!org) return HttpResponse::Error(404, "not_found", "no such delivery");
    auto identity = ctx->Identify(req, *org);
    if (!identity.ok()) return Validation(identity.status().message());
    json fields = {{"deliveryId", req.path_params.at("id")}};
    return ctx->AwaitAttempt(req, *org,
                             ctx->Command(req, *org, kRetryDelivery, std::move(fields), *identity));
  });

  // enqueueEvent: the seeds' WebhookEvent {eventId, eventType, organizationId, data, occurredAt}.
  server.Route("POST", "/v1/webhooks/events", write, [ctx](const HttpRequest& req) {
    auto body = ctx->Body(req);
    if (!body) return Validation("the body must be a JSON object");
    auto org = ctx->BodyOrg(req, *body);
    if (auto* error = std::get_if<HttpResponse>(&org)) return *error;
    const std::string& o = std::get<std::string>(org);
    auto identity = ctx->Identify(req, o);
    if (!identity.ok()) return Validation(identity.status().message());
    body->erase("organizationId");
    json fields = {{"event", std::move(*body)}};
    return ctx->Command(req, o, kEnqueueEvent, std::move(fields), *identity);
  });

  server.Route("GET", "/v1/orgs/{org}/webhooks", RouteAccess::Scope(kRead, "org"),
               [ctx](const HttpRequest& req) {
                 const std::string org = req.path_params.at("org");
                 if (auto s = topology::CheckId(org, ctx->options.max_id_bytes, "organizationId");
                     !s.ok())
                   return Validation(s.message(), {{"field", "org"}});
                 auto limit = ParseLimit(req, 50);
                 if (!limit)
                   return Validation("limit must be an integer 1..500", {{"field", "limit"}});
                 return ctx->Read(req, org, [&](const WebhooksQueries& q) {
                   return JsonOr(q.ListWebhooks(org, *limit, Query(req, "cursor")));
                 });
               });

  server.Route("GET", "/v1/events/{eventId}/deliveries", read, [ctx](const HttpRequest& req) {
    std::string org = Query(req, "org");
    if (org.empty()) org = req.principal->organization;
    if (org.empty()) return Validation("org is required", {{"field", "org"}});
    if (!req.principal->CanAccess(org))
      return HttpResponse::Error(404, "not_found", "no deliveries of such an event");
    if (auto s = topology::CheckId(org, ctx->options.max_id_bytes, "org"); !s.ok())
      return Validation(s.message(), {{"field", "org"}});
    return ctx->Read(req, org, [&](const WebhooksQueries& q) {
      return JsonOr(q.GetEventDeliveryStatus(org, req.path_params.at("eventId")));
    });
  });

  server.Route("GET", "/v1/webhooks/{id}/deliveries", read, [ctx](const HttpRequest& req) {
    auto org = ctx->OrgOf(req, "id", 'w');
    if (!org) return HttpResponse::Error(404, "not_found", "no such webhook");
    auto limit = ParseLimit(req, 50);
    if (!limit) return Validation("limit must be an integer 1..500", {{"field", "limit"}});
    const std::string status = Query(req, "status");
    if (!status.empty() && status != "pending" && status != "in_progress" &&
        status != "succeeded" && status != "failed" && status != "cancelled")
      return Validation("status must be pending, in_progress, succeeded, failed or cancelled",
                        {{"field", "status"}});
    return ctx->Read(req, *org, [&](const WebhooksQueries& q) {
      auto r = q.GetDeliveryHistory(*org, req.path_params.at("id"), *limit, Query(req, "cursor"),
                                    status);
      if (!r.ok() && r.status().code() == state::Status::Code::kInvalidArgument)
        return Validation(r.status().message(), {{"field", "cursor"}});
      return JsonOr(r);
    });
  });

  server.Route("GET", "/v1/webhooks/{id}/circuit", read, [ctx](const HttpRequest& req) {
    auto org = ctx->OrgOf(req, "id", 'w');
    if (!org) return HttpResponse::Error(404, "not_found", "no such webhook");
    return ctx->Read(req, *org, [&](const WebhooksQueries& q) {
      return JsonOr(q.GetCircuitState(*org, req.path_params.at("id")));
    });
  });

  // getHealthMetrics(timeRange): [startTime, endTime), default the last 24 hours.
  server.Route("GET", "/v1/webhooks/{id}/health", read, [ctx](const HttpRequest& req) {
    auto org = ctx->OrgOf(req, "id", 'w');
    if (!org) return HttpResponse::Error(404, "not_found", "no such webhook");
    int64_t end = topology::WallClockMs();
    int64_t start = end - 24LL * 3600 * 1000;
    for (auto [name, target] : {std::pair{"startTime", &start}, std::pair{"endTime", &end}}) {
      const std::string text = Query(req, name);
      if (text.empty()) continue;
      auto t = topology::ParseTimestampString(text);
      if (!t.ok()) return Validation(t.status().message(), {{"field", name}});
      *target = *t;
    }
    if (end <= start) return Validation("endTime must be after startTime", {{"field", "endTime"}});
    if (end - start > 400LL * 24 * 3600 * 1000)
      return Validation("the range may span at most 400 days", {{"field", "startTime"}});
    return ctx->Read(req, *org, [&](const WebhooksQueries& q) {
      return JsonOr(q.GetHealthMetrics(*org, req.path_params.at("id"), start, end));
    });
  });
}

}  // namespace cm::webhooks
