#pragma once

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cm::topology {

// Who a request acts for, as its credential says: an API key of one organization, or an admin
// key of all. Scopes name what it may do ("usage:read", ...); "admin" includes every scope.
struct Principal {
  static constexpr const char* kAdminScope = "admin";

  std::string key_id;
  std::string organization;  // empty: every organization
  std::vector<std::string> scopes;
  std::string user_id;  // optional: who acts (the teams actor)

  bool HasScope(std::string_view scope) const {
    return std::any_of(scopes.begin(), scopes.end(),
                       [&](const std::string& s) { return s == scope || s == kAdminScope; });
  }
  bool admin() const { return HasScope(kAdminScope); }
  // Whether it may see or change anything of `org`.
  bool CanAccess(std::string_view org) const { return organization.empty() || organization == org; }

  nlohmann::json ToJson() const {
    return {{"keyId", key_id},
            {"organizationId", organization},
            {"scopes", scopes},
            {"userId", user_id}};
  }
  static std::optional<Principal> FromJson(const nlohmann::json& j) {
    if (!j.is_object() || !j.contains("keyId") || !j["keyId"].is_string()) return std::nullopt;
    Principal p;
    p.key_id = j["keyId"].get<std::string>();
    if (j.contains("organizationId") && j["organizationId"].is_string())
      p.organization = j["organizationId"].get<std::string>();
    if (j.contains("userId") && j["userId"].is_string()) p.user_id = j["userId"].get<std::string>();
    if (j.contains("scopes") && j["scopes"].is_array()) {
      for (const auto& s : j["scopes"])
        if (s.is_string()) p.scopes.push_back(s.get<std::string>());
    }
    return p;
  }
};

// What a route demands of the caller. Every route states one, so none is born open by mistake.
struct RouteAccess {
  bool is_public = false;
  std::string scope;
  // The path parameter that names the organization the route reads or changes: a principal of
  // another organization gets 404, as if the organization did not exist.
  std::string organization_param;

  // Health, readiness and metrics: no credential.
  static RouteAccess Public() { return {true, "", ""}; }
  static RouteAccess Scope(std::string scope, std::string organization_param = "") {
    return {false, std::move(scope), std::move(organization_param)};
  }
};

}  // namespace cm::topology
