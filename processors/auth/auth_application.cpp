#include "processors/auth/auth_application.h"

#include <thread>

#include "processors/auth/api_key_authenticator.h"
#include "topology/common/json.h"
#include "topology/common/wall_clock.h"

namespace cm::auth {

using nlohmann::json;
using topology::HttpRequest;
using topology::HttpResponse;
using topology::RouteAccess;

namespace {

constexpr auto kWriteTimeout = std::chrono::seconds(10);

// Waits until `done` holds or the deadline passes.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::optional<ApiKeyRecord> Lookup(const topology::KafkaStreams& streams, const std::string& id) {
  state::ReadOnlyKeyValueStore* keys = streams.GlobalStore(kApiKeysStore);
  if (keys == nullptr) return std::nullopt;
  auto value = keys->Get(id);
  return value ? ApiKeyRecord::Parse(*value) : std::nullopt;
}

HttpResponse Validation(const std::string& message) {
  return HttpResponse::Error(400, "validation_error", message);
}

}  // namespace

namespace {

// Appends `record` and waits until the global store holds a record for its key id that
// `seen` accepts.
state::Status AppendAndAwait(const topology::KafkaStreams& streams,
                             const topology::CommandSender& commands, const ApiKeyRecord& record,
                             const std::function<bool(const ApiKeyRecord&)>& seen,
                             std::chrono::milliseconds timeout) {
  if (auto s = commands.Append(kApiKeysTopic, record.key_id, record.Serialize()); !s.ok()) return s;
  if (!WaitUntil(
          [&] {
            auto stored = Lookup(streams, record.key_id);
            return stored && seen(*stored);
          },
          timeout))
    return state::Status::Unavailable(
        "the key was written but this instance has not read it "
        "back yet; it takes effect shortly");
  return state::Status::OK();
}

}  // namespace

state::Status WriteApiKey(const topology::KafkaStreams& streams,
                          const topology::CommandSender& commands, const ApiKeyRecord& record,
                          std::chrono::milliseconds timeout) {
  const std::string value = record.Serialize();
  return AppendAndAwait(
      streams, commands, record,
      [&](const ApiKeyRecord& stored) { return stored.Serialize() == value; }, timeout);
}

state::Status EnsureAdminKey(const topology::KafkaStreams& streams,
                             const topology::CommandSender& commands, const std::string& token,
                             int64_t now_ms, std::chrono::milliseconds timeout) {
  auto record = AdminRecordForToken(token, now_ms);
  if (!record.ok()) return record.status();
  if (!WaitUntil([&] { return streams.GlobalStoresRestored(); }, timeout))
    return state::Status::Unavailable("the api-keys store did not finish restoring");
  if (Lookup(streams, record->key_id)) return state::Status::OK();
  // Another instance may write it too, a second apart: any record of the key id will do.
  return AppendAndAwait(
      streams, commands, *record, [](const ApiKeyRecord&) { return true; }, timeout);
}

state::Status AuthApplication::AddTo(topology::TopologyBuilder& builder) const {
  builder.AddGlobalStore(kApiKeysStore, kApiKeysTopic);
  return state::Status::OK();
}

void AuthApplication::AddRoutes(topology::RouteContext& context) const {
  const topology::KafkaStreams& streams = context.streams;
  const topology::CommandSender& commands = context.commands;
  context.server.SetAuthenticator(std::make_unique<ApiKeyAuthenticator>(
      [&streams] { return streams.GlobalStore(kApiKeysStore); },
      [] { return topology::WallClockMs() / 1000; }));
  const RouteAccess admin = RouteAccess::Scope(topology::Principal::kAdminScope);

  context.server.Route(
      "POST", "/v1/admin/api-keys", admin, [&streams, &commands](const HttpRequest& req) {
        auto body = topology::ParseJson(req.body.empty() ? "{}" : req.body);
        if (!body.ok() || !body->is_object())
          return Validation(
              "the body must be a JSON object {organizationId?, scopes, userId?, "
              "name?}");
        auto text = [&](const char* f) -> std::optional<std::string> {
          if (!body->contains(f) || (*body)[f].is_null()) return std::string();
          if (!(*body)[f].is_string()) return std::nullopt;
          return (*body)[f].get<std::string>();
        };
        auto org = text("organizationId"), user = text("userId"), name = text("name");
        if (!org || !user || !name)
          return Validation("organizationId, userId and name are strings");
        std::vector<std::string> scopes;
        if (body->contains("scopes")) {
          if (!(*body)["scopes"].is_array())
            return Validation("scopes must be an array of strings");
          for (const auto& s : (*body)["scopes"]) {
            if (!s.is_string()) return Validation("scopes must be an array of strings");
            scopes.push_back(s.get<std::string>());
          }
        }
        auto key = CreateApiKey(*org, std::move(scopes), *user, *name, topology::WallClockMs());
        if (!key.ok()) return Validation(key.status().message());
        if (auto s = WriteApiKey(streams, commands, key->record, kWriteTimeout); !s.ok())
          return HttpResponse::FromStatus(s);
        json out = key->record.ToPublicJson();
        out["key"] = key->token;  // the only time it is shown
        return HttpResponse::Json(201, out);
      });

  context.server.Route("GET", "/v1/admin/api-keys", admin, [&streams](const HttpRequest& req) {
    state::ReadOnlyKeyValueStore* keys = streams.GlobalStore(kApiKeysStore);
    if (keys == nullptr) return HttpResponse::Error(503, "unavailable", "keys not loaded yet");
    auto org = req.query.find("organizationId");
    json list = json::array();
    keys->Range("", "", [&](std::string_view, std::string_view value) {
      auto r = ApiKeyRecord::Parse(value);
      if (r && (org == req.query.end() || r->organization == org->second))
        list.push_back(r->ToPublicJson());
      return true;
    });
    return HttpResponse::Json(200, {{"apiKeys", list}, {"total", list.size()}});
  });

  context.server.Route(
      "DELETE", "/v1/admin/api-keys/{id}", admin, [&streams, &commands](const HttpRequest& req) {
        auto record = Lookup(streams, req.path_params.at("id"));
        if (!record) return HttpResponse::Error(404, "not_found", "no such API key");
        if (!record->revoked()) {
          record->revoked_at = IsoTime(topology::WallClockMs());
          if (auto s = WriteApiKey(streams, commands, *record, kWriteTimeout); !s.ok())
            return HttpResponse::FromStatus(s);
        }
        return HttpResponse::Json(200, record->ToPublicJson());
      });
}

}  // namespace cm::auth
