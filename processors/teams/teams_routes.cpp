#include "processors/teams/teams_routes.h"

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "processors/teams/invitation_token.h"
#include "processors/teams/team_id.h"
#include "processors/teams/teams_commands.h"
#include "processors/teams/teams_queries.h"
#include "processors/teams/teams_stores.h"
#include "processors/teams/user_teams_processor.h"
#include "topology/common/crypto.h"
#include "topology/common/json.h"
#include "topology/common/wall_clock.h"
#include "topology/query/idempotency.h"

namespace cm::teams {

using nlohmann::json;
using topology::HttpRequest;
using topology::HttpResponse;
using topology::RouteAccess;

namespace {

constexpr auto kCommandTimeout = std::chrono::seconds(10);
constexpr const char* kRead = "teams:read";
constexpr const char* kWrite = "teams:write";

HttpResponse NotFound(const std::string& what = "no such team") {
  return HttpResponse::Error(404, "not_found", what);
}
HttpResponse Validation(const std::string& message, json details = json::object()) {
  return HttpResponse::Error(400, "validation_error", message, std::move(details));
}

// A page size: 1..500.
std::optional<size_t> ParseLimit(const std::string& text) {
  if (text.empty() || text.size() > 3 || text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  const int n = std::stoi(text);
  if (n < 1 || n > 500) return std::nullopt;
  return static_cast<size_t>(n);
}

bool Flag(const HttpRequest& req, const std::string& name) {
  auto it = req.query.find(name);
  return it != req.query.end() && (it->second == "true" || it->second == "1");
}

struct Context {
  const topology::KafkaStreams& streams;
  const topology::QueryRouter& router;
  const topology::CommandSender& commands;
  TeamsOptions options;

  topology::TaskId TaskOf(const std::string& org) const {
    const int sub = *streams.topology().SubTopologyOfSource(options.commands_topic);
    return streams.TaskForKey(sub, org);
  }

  // The organization of the {id} team, when the caller may see it.
  std::optional<std::string> TeamOrg(const HttpRequest& req) const {
    auto org = OrganizationOfTeamId(req.path_params.at("id"));
    if (!org || !req.principal->CanAccess(*org)) return std::nullopt;
    return org;
  }

  std::optional<json> Body(const HttpRequest& req) const {
    if (req.body.empty()) return json::object();
    auto body = topology::ParseJson(req.body, options.max_json_depth);
    if (!body.ok() || !body->is_object()) return std::nullopt;
    return std::move(body).value();
  }

  // Who acts: the key's user; an admin key may name another in the body.
  std::optional<HttpResponse> ResolveActor(const HttpRequest& req, json& body,
                                           const char* alias = nullptr) const {
    const topology::Principal& p = *req.principal;
    std::string asked;
    for (const char* field : {"actorUserId", alias}) {
      if (field == nullptr || !body.contains(field) || body[field].is_null()) continue;
      if (!body[field].is_string())
        return Validation(std::string(field) + " must be a string", {{"field", field}});
      asked = body[field].get<std::string>();
    }
    if (!asked.empty() && asked != p.user_id && !p.admin()) {
      return HttpResponse::Error(403, "forbidden",
                                 "actorUserId must be the API key's user (" +
                                     (p.user_id.empty() ? std::string("none") : p.user_id) +
                                     "); only an admin key may act for another user",
                                 {{"field", "actorUserId"}});
    }
    if (asked.empty()) asked = p.user_id;
    if (asked.empty()) {
      return HttpResponse::Error(
          403, "forbidden",
          p.admin() ? "an admin key without a user must name actorUserId in the body"
                    : "this API key has no userId, so it cannot change teams; make a key with a "
                      "userId",
          {{"field", "actorUserId"}});
    }
    if (alias) body.erase(alias);
    body["actorUserId"] = asked;
    return std::nullopt;
  }

  // Appends the command to the organization's partition and answers with its stored result;
  // `decorate` may add to a successful answer (the invitation token).
  HttpResponse Command(const HttpRequest& req, const std::string& org, const char* type,
                       json fields, const std::function<void(json&)>& decorate = nullptr) const {
    if (auto s = CheckId(org, options.max_id_bytes, "organizationId"); !s.ok())
      return Validation(s.message(), {{"field", "organizationId"}});
    if (auto error = CheckCommandFields(type, fields, options))
      return HttpResponse::Json(400, *error);
    if (req.Header("Idempotency-Key").size() > 256)
      return Validation("Idempotency-Key must be at most 256 bytes");
    auto identity = topology::IdentifyCommand(req, org);
    if (!identity.ok()) return Validation(identity.status().message());
    const topology::TaskId task = TaskOf(org);
    return router.RouteToOwner(req, task, [&] {
      return commands.Submit({options.commands_topic, org, task, kCommandResultsStore, type, org,
                              *identity, std::move(fields)},
                             kCommandTimeout, decorate);
    });
  }

  // The user index is keyed by user: its task is the user's partition of the repartition topic.
  topology::TaskId TaskOfUser(const std::string& user) const {
    const std::string topic = topology::Topology::RepartitionTopic(
        streams.topology().application_id(), kUserTeamsRepartition);
    return streams.TaskForKey(*streams.topology().SubTopologyOfSource(topic), user);
  }

  // Runs a read of the {id} team on its task. A secret team is 404 for a key whose user is not
  // a member of it, as if it did not exist; an admin key sees every team.
  HttpResponse Query(const HttpRequest& req, const std::string& org,
                     const std::function<HttpResponse(const TeamsQueries&)>& query) const {
    return router.Route(req, TaskOf(org), [&](const topology::ReadOnlyStores& stores) {
      TeamsStoreViews views = TeamsStoreViews::Committed(stores);
      if (!views.complete())
        return HttpResponse::Error(500, "internal", "the teams stores are missing on this task");
      const TeamsQueries queries(views);
      if (!req.principal->admin() &&
          !queries.Visible(req.path_params.at("id"), req.principal->user_id))
        return NotFound();
      return query(queries);
    });
  }
};

HttpResponse JsonOr(const state::Result<json>& r, int status = 200) {
  if (!r.ok()) return HttpResponse::FromStatus(r.status());
  return HttpResponse::Json(status, r.value());
}

}  // namespace

void AddTeamsRoutes(topology::HttpServer& server, const topology::KafkaStreams& streams,
                    const topology::QueryRouter& router, const topology::CommandSender& commands,
                    const TeamsOptions& options) {
  auto ctx = std::make_shared<const Context>(Context{streams, router, commands, options});
  const RouteAccess read = RouteAccess::Scope(kRead);
  const RouteAccess write = RouteAccess::Scope(kWrite);

  server.Route("POST", "/v1/teams", write, [ctx](const HttpRequest& req) {
    auto body = ctx->Body(req);
    if (!body) return Validation("the body must be a JSON object");
    std::string org = req.principal->organization;
    if (body->contains("organizationId")) {
      if (!(*body)["organizationId"].is_string())
        return Validation("organizationId must be a string", {{"field", "organizationId"}});
      org = (*body)["organizationId"].get<std::string>();
    }
    if (org.empty()) return Validation("organizationId is required", {{"field", "organizationId"}});
    if (!req.principal->CanAccess(org)) return NotFound("no such organization");
    if (auto denied = ctx->ResolveActor(req, *body, "creatorUserId")) return *denied;
    body->erase("organizationId");
    return ctx->Command(req, org, kCreateTeam, std::move(*body));
  });

  server.Route("GET", "/v1/teams/{id}", read, [ctx](const HttpRequest& req) {
    auto org = ctx->TeamOrg(req);
    if (!org) return NotFound();
    return ctx->Query(req, *org, [&](const TeamsQueries& q) {
      return JsonOr(q.GetTeam(req.path_params.at("id"), Flag(req, "includeMembers"),
                              Flag(req, "includeSubteams")));
    });
  });

  // The mutating routes on one team: {id} (and {user}) go into the command's fields.
  auto team_command = [ctx](const char* type,
                            const std::function<void(const HttpRequest&, json&)>& fill) {
    return [ctx, type, fill](const HttpRequest& req) {
      auto org = ctx->TeamOrg(req);
      if (!org) return NotFound();
      auto body = ctx->Body(req);
      if (!body) return Validation("the body must be a JSON object");
      if (auto denied = ctx->ResolveActor(req, *body)) return *denied;
      (*body)["teamId"] = req.path_params.at("id");
      if (fill) fill(req, *body);
      return ctx->Command(req, *org, type, std::move(*body));
    };
  };

  server.Route("PATCH", "/v1/teams/{id}", write, team_command(kUpdateTeam, nullptr));
  server.Route("DELETE", "/v1/teams/{id}", write,
               team_command(kDeleteTeam, [](const HttpRequest& req, json& body) {
                 if (auto it = req.query.find("reassignTo"); it != req.query.end())
                   body["reassignTo"] = it->second;
                 if (req.query.count("deleteSubteams"))
                   body["deleteSubteams"] = Flag(req, "deleteSubteams");
               }));
  server.Route("POST", "/v1/teams/{id}/members", write, team_command(kAddMember, nullptr));
  server.Route("PATCH", "/v1/teams/{id}/members/{user}", write,
               team_command(kUpdateMemberRole, [](const HttpRequest& req, json& body) {
                 body["userId"] = req.path_params.at("user");
               }));
  server.Route("DELETE", "/v1/teams/{id}/members/{user}", write,
               team_command(kRemoveMember, [](const HttpRequest& req, json& body) {
                 body["userId"] = req.path_params.at("user");
               }));
  server.Route("POST", "/v1/teams/{id}/move", write, team_command(kMoveTeam, nullptr));
  server.Route("DELETE", "/v1/teams/{id}/invitations/{invitationId}", write,
               team_command(kRevokeInvitation, [](const HttpRequest& req, json& body) {
                 body["invitationId"] = req.path_params.at("invitationId");
               }));

  server.Route("POST", "/v1/teams/{id}/invitations", write, [ctx](const HttpRequest& req) {
    auto org = ctx->TeamOrg(req);
    if (!org) return NotFound();
    auto body = ctx->Body(req);
    if (!body) return Validation("the body must be a JSON object");
    if (auto denied = ctx->ResolveActor(req, *body, "inviterUserId")) return *denied;
    (*body)["teamId"] = req.path_params.at("id");
    // The token is made here and only its hash is sent: it never reaches Kafka or a store.
    // With a cluster secret it derives from the invitation id and a nonce the command carries,
    // so that the invitation mailer can rebuild it for the email (invitation_token.h).
    const std::string invitation_id = "inv_" + topology::HexEncode(topology::RandomBytes(12));
    std::string token;
    if (ctx->options.invitation_secret.empty()) {
      token = RandomInvitationToken(*org);
    } else {
      const std::string nonce = NewInvitationNonce();
      token = DeriveInvitationToken(ctx->options.invitation_secret, *org, invitation_id, nonce);
      (*body)["nonce"] = nonce;
    }
    (*body)["invitationId"] = invitation_id;
    (*body)["tokenHash"] = topology::HexEncode(topology::Sha256(token));
    return ctx->Command(req, *org, kCreateInvitation, std::move(*body), [&](json& answer) {
      // Only the request that made the invitation learns its token (a retry cannot).
      if (answer.value("id", "") == invitation_id) answer["token"] = token;
    });
  });

  server.Route("POST", "/v1/invitations/{token}/accept", write, [ctx](const HttpRequest& req) {
    const std::string token = req.path_params.at("token");
    auto org = OrganizationOfInvitationToken(token);
    // An unusable token, and one of another organization, look like an unknown one.
    if (!org || !req.principal->CanAccess(*org) ||
        !CheckId(*org, ctx->options.max_id_bytes, "organizationId").ok())
      return NotFound("no such invitation");
    auto body = ctx->Body(req);
    if (!body) return Validation("the body must be a JSON object");
    if (auto denied = ctx->ResolveActor(req, *body, "userId")) return *denied;
    json fields = {{"actorUserId", (*body)["actorUserId"]},
                   {"tokenHash", topology::HexEncode(topology::Sha256(token))}};
    return ctx->Command(req, *org, kAcceptInvitation, std::move(fields));
  });

  server.Route("GET", "/v1/teams/{id}/hierarchy", read, [ctx](const HttpRequest& req) {
    auto org = ctx->TeamOrg(req);
    if (!org) return NotFound();
    std::string direction = "both";
    if (auto it = req.query.find("direction"); it != req.query.end()) direction = it->second;
    return ctx->Query(req, *org, [&](const TeamsQueries& q) {
      return JsonOr(q.GetHierarchy(req.path_params.at("id"), direction));
    });
  });

  server.Route("GET", "/v1/teams/{id}/permissions/{user}", read, [ctx](const HttpRequest& req) {
    auto org = ctx->TeamOrg(req);
    if (!org) return NotFound();
    return ctx->Query(req, *org, [&](const TeamsQueries& q) {
      return JsonOr(
          q.GetEffectivePermissions(req.path_params.at("id"), req.path_params.at("user")));
    });
  });

  server.Route(
      "GET", "/v1/teams/{id}/permissions/{user}/check", read, [ctx](const HttpRequest& req) {
        auto org = ctx->TeamOrg(req);
        if (!org) return NotFound();
        auto it = req.query.find("permission");
        if (it == req.query.end() || it->second.empty())
          return Validation("permission is required", {{"field", "permission"}});
        return ctx->Query(req, *org, [&](const TeamsQueries& q) {
          return JsonOr(
              q.CheckPermission(req.path_params.at("id"), req.path_params.at("user"), it->second));
        });
      });

  // getUserTeams: the user's direct memberships in every organization the key may see.
  server.Route("GET", "/v1/users/{user}/teams", read, [ctx](const HttpRequest& req) {
    UserTeamsPage page;
    page.user = req.path_params.at("user");
    if (auto s = CheckId(page.user, ctx->options.max_id_bytes, "userId"); !s.ok())
      return Validation(s.message(), {{"field", "userId"}});
    if (auto it = req.query.find("cursor"); it != req.query.end()) page.cursor = it->second;
    if (auto it = req.query.find("limit"); it != req.query.end()) {
      auto limit = ParseLimit(it->second);
      if (!limit) return Validation("limit must be an integer 1..500", {{"field", "limit"}});
      page.limit = *limit;
    }
    const topology::Principal principal = *req.principal;
    return ctx->router.Route(
        req, ctx->TaskOfUser(page.user), [&](const topology::ReadOnlyStores& stores) {
          auto* index = stores.KeyValue(kUserTeamsStore);
          if (!index)
            return HttpResponse::Error(500, "internal", "the user index is missing on this task");
          // Another user's secret teams are not listed (only an admin key sees them).
          const bool sees_secret = principal.admin() || principal.user_id == page.user;
          auto visible = [&](const json& entry) {
            return principal.CanAccess(entry.value("organizationId", "")) &&
                   (sees_secret || entry.value("visibility", "") != "secret");
          };
          auto answer = GetUserTeams(*index, page, visible);
          if (!answer.ok()) return Validation(answer.status().message(), {{"field", "cursor"}});
          return HttpResponse::Json(200, answer.value());
        });
  });
}

}  // namespace cm::teams
