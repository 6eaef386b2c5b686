#include "processors/teams/teams_commands.h"

#include <cstdio>
#include <ctime>

#include "processors/teams/roles.h"
#include "processors/teams/team_id.h"
#include "processors/teams/teams_stores.h"

namespace cm::teams {

using nlohmann::json;

namespace {

json Invalid(const std::string& field, const std::string& message) {
  return ErrorBody("validation_error", message, {{"field", field}});
}

size_t CodePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::optional<json> CheckIdField(const json& c, const std::string& field, bool required,
                                 const TeamsOptions& o) {
  if (!c.contains(field) || c[field].is_null()) {
    if (required) return Invalid(field, field + " is required");
    return std::nullopt;
  }
  if (!c[field].is_string()) return Invalid(field, field + " must be a string");
  auto s = CheckId(c[field].get<std::string>(), o.max_id_bytes, field);
  if (!s.ok()) return Invalid(field, s.message());
  return std::nullopt;
}

std::optional<json> CheckTeamIdField(const json& c, const std::string& field, bool required,
                                     const TeamsOptions& o) {
  if (auto e = CheckIdField(c, field, required, o)) return e;
  if (!c.contains(field) || c[field].is_null()) return std::nullopt;
  if (!OrganizationOfTeamId(c[field].get<std::string>()))
    return Invalid(field, field + " is not a team id (<organizationId>~t<16 hex>)");
  return std::nullopt;
}

std::optional<json> CheckTeamFields(const json& c, bool create) {
  if (c.contains("name") || create) {
    if (!c.contains("name") || !c["name"].is_string())
      return Invalid("name", "name must be a string of 1 to 100 characters");
    const std::string name = c["name"].get<std::string>();
    const size_t n = CodePoints(name);
    if (n < 1 || n > 100) return Invalid("name", "name must be 1 to 100 characters");
    for (unsigned char ch : name)
      if (ch < 0x20 || ch == 0x7f)
        return Invalid("name", "name must not contain control characters");
    if (name.find_first_not_of(' ') == std::string::npos)
      return Invalid("name", "name must not be blank");
  }
  if (c.contains("description") && !c["description"].is_null()) {
    if (!c["description"].is_string() || c["description"].get<std::string>().size() > 2000)
      return Invalid("description", "description must be a string of at most 2000 bytes");
  }
  if (c.contains("visibility")) {
    const json& v = c["visibility"];
    if (!v.is_string() || (v != "public" && v != "private" && v != "secret"))
      return Invalid("visibility", "visibility must be public, private or secret");
  }
  if (c.contains("settings") && !c["settings"].is_null()) {
    if (!c["settings"].is_object()) return Invalid("settings", "settings must be an object");
    if (c["settings"].dump().size() > 16384)
      return Invalid("settings", "settings must be at most 16384 bytes of JSON");
  }
  return std::nullopt;
}

std::optional<json> CheckRole(const json& c, bool required) {
  if (!c.contains("role") || c["role"].is_null()) {
    if (required) return Invalid("role", "role is required (member, admin or owner)");
    return std::nullopt;
  }
  if (!c["role"].is_string() || !ParseRole(c["role"].get<std::string>()))
    return Invalid("role", "role must be member, admin or owner");
  return std::nullopt;
}

}  // namespace

std::optional<json> CheckCommandFields(std::string_view type, const json& c,
                                       const TeamsOptions& o) {
  if (!c.is_object()) return ErrorBody("validation_error", "the body must be a JSON object");
  if (auto e = CheckIdField(c, "actorUserId", true, o)) return e;
  if (type == kCreateTeam) {
    if (auto e = CheckTeamFields(c, true)) return e;
    return CheckTeamIdField(c, "parentTeamId", false, o);
  }
  if (type == kUpdateTeam) {
    if (auto e = CheckTeamIdField(c, "teamId", true, o)) return e;
    return CheckTeamFields(c, false);
  }
  if (type == kDeleteTeam) {
    if (auto e = CheckTeamIdField(c, "teamId", true, o)) return e;
    if (c.contains("deleteSubteams") && !c["deleteSubteams"].is_boolean())
      return Invalid("deleteSubteams", "deleteSubteams must be a boolean");
    return CheckTeamIdField(c, "reassignTo", false, o);
  }
  if (type == kAddMember || type == kRemoveMember || type == kUpdateMemberRole) {
    if (auto e = CheckTeamIdField(c, "teamId", true, o)) return e;
    if (auto e = CheckIdField(c, "userId", true, o)) return e;
    if (type == kRemoveMember) return std::nullopt;
    return CheckRole(c, type == kUpdateMemberRole);
  }
  if (type == kMoveTeam) {
    if (auto e = CheckTeamIdField(c, "teamId", true, o)) return e;
    if (!c.contains("newParentId"))
      return Invalid("newParentId", "newParentId is required (a team id, or null for a root)");
    return CheckTeamIdField(c, "newParentId", false, o);
  }
  if (type == kCreateInvitation) {
    if (auto e = CheckTeamIdField(c, "teamId", true, o)) return e;
    const json email = c.value("email", json());
    if (!email.is_string() || email.get<std::string>().size() > 254 ||
        email.get<std::string>().find('@') == std::string::npos ||
        email.get<std::string>().front() == '@' || email.get<std::string>().back() == '@')
      return Invalid("email", "email must be an address (local@domain, at most 254 bytes)");
    if (auto e = CheckRole(c, false)) return e;
    if (c.contains("message") &&
        (!c["message"].is_string() || c["message"].get<std::string>().size() > 2000))
      return Invalid("message", "message must be a string of at most 2000 bytes");
    if (c.contains("expiresInMs") &&
        (!c["expiresInMs"].is_number_integer() || c["expiresInMs"].get<int64_t>() <= 0 ||
         c["expiresInMs"].get<int64_t>() > 90LL * 24 * 3600 * 1000))
      return Invalid("expiresInMs", "expiresInMs must be a positive integer, at most 90 days");
    if (c.contains("nonce")) {
      // The token's derivation input (invitation_token.h): base64url, kept for the mailer.
      const json& n = c["nonce"];
      if (!n.is_string() || n.get<std::string>().size() < 16 || n.get<std::string>().size() > 64 ||
          n.get<std::string>().find_first_not_of(
              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
              "0123456789-_") != std::string::npos)
        return Invalid("nonce", "nonce must be 16..64 base64url characters");
    }
    if (auto e = CheckIdField(c, "invitationId", true, o)) return e;
    return CheckIdField(c, "tokenHash", true, o);
  }
  if (type == kAcceptInvitation) return CheckIdField(c, "tokenHash", true, o);
  if (type == kRevokeInvitation) {
    if (auto e = CheckTeamIdField(c, "teamId", true, o)) return e;
    return CheckIdField(c, "invitationId", true, o);
  }
  return ErrorBody("validation_error", "unknown teams command type '" + std::string(type) + "'");
}

}  // namespace cm::teams
