#include "processors/teams/teams_snapshot_schema.h"

#include <nlohmann/json.hpp>

#include "processors/teams/roles.h"
#include "processors/teams/team_graph.h"
#include "processors/teams/teams_stores.h"
#include "state/key_codec.h"
#include "topology/processor/snapshot_fields.h"

namespace cm::teams {

namespace {

using nlohmann::json;
using Row = topology::SnapshotTable::Row;
using Field = topology::SnapshotTable::Field;
using Value = std::optional<std::string_view>;

using state::ParseTaggedKey;
using topology::SnapshotObject;
using topology::SnapshotText;

Row Keys(const std::vector<std::string>& fields) { return Row(fields.begin(), fields.end()); }

topology::SnapshotTable Teams() {
  topology::SnapshotTable t;
  t.store = kTeamsStore;
  t.table = "teams_teams";
  t.columns = {"organization_id", "team_id",  "name",       "description", "parent_team_id",
               "visibility",      "settings", "created_at", "updated_at",  "created_by"};
  t.key_columns = 2;
  t.decode = [](std::string_view key, Value value) -> std::optional<Row> {
    auto f = ParseTaggedKey(key, 't', 2);
    if (!f) return std::nullopt;
    Row row = Keys(*f);
    if (!value) return row;
    auto team = SnapshotObject(*value);
    if (!team) return std::nullopt;
    for (const char* c : {"name", "description", "parentTeamId", "visibility"})
      row.push_back(SnapshotText(*team, c));
    row.push_back(team->value("settings", json::object()).dump());
    for (const char* c : {"createdAt", "updatedAt", "createdBy"})
      row.push_back(SnapshotText(*team, c));
    return row;
  };
  return t;
}

topology::SnapshotTable Memberships() {
  topology::SnapshotTable t;
  t.store = kMembersStore;
  t.table = "teams_memberships";
  t.columns = {"organization_id", "team_id", "user_id", "role", "joined_at", "added_by"};
  t.key_columns = 3;
  t.decode = [](std::string_view key, Value value) -> std::optional<Row> {
    auto f = ParseTaggedKey(key, 'm', 3);
    if (!f) return std::nullopt;
    Row row = Keys(*f);
    if (!value) return row;
    auto m = SnapshotObject(*value);
    if (!m || !ParseRole(m->value("role", ""))) return std::nullopt;
    for (const char* c : {"role", "joinedAt", "addedBy"}) row.push_back(SnapshotText(*m, c));
    return row;
  };
  return t;
}

topology::SnapshotTable Invitations() {
  topology::SnapshotTable t;
  t.store = kInvitationsStore;
  t.table = "teams_invitations";
  t.columns = {"organization_id", "invitation_id", "team_id",    "email",      "role",
               "status",          "invited_by",    "created_at", "expires_at", "token_sha256"};
  t.key_columns = 2;
  t.decode = [](std::string_view key, Value value) -> std::optional<Row> {
    auto f = ParseTaggedKey(key, 'i', 2);  // 'h' entries (token hash -> id) are an index
    if (!f) return std::nullopt;
    Row row = Keys(*f);
    if (!value) return row;
    auto inv = SnapshotObject(*value);
    if (!inv) return std::nullopt;
    for (const char* c :
         {"teamId", "email", "role", "status", "invitedBy", "createdAt", "expiresAt", "tokenHash"})
      row.push_back(SnapshotText(*inv, c));
    return row;
  };
  return t;
}

topology::SnapshotTable Permissions() {
  topology::SnapshotTable t;
  t.store = kPermissionsStore;
  t.table = "teams_permissions";
  t.columns = {"organization_id", "team_id",     "user_id", "role",
               "granted_by_team", "permissions", "grants"};
  t.key_columns = 3;
  t.decode = [](std::string_view key, Value value) -> std::optional<Row> {
    auto f = ParseTaggedKey(key, 'p', 3);
    if (!f) return std::nullopt;
    Row row = Keys(*f);
    if (!value) return row;
    const Grants grants = DecodeGrants(*value);
    auto best = DecidingGrant(grants, (*f)[1]);
    if (!best) return std::nullopt;
    row.push_back(std::string(RoleName(best->role)));
    row.push_back(best->team_id);
    row.push_back(json(PermissionsOf(best->role)).dump());
    row.push_back(EncodeGrants(grants));
    return row;
  };
  return t;
}

}  // namespace

topology::SnapshotSchema TeamsSnapshotSchema() {
  return {{Teams(), Memberships(), Invitations(), Permissions()}};
}

}  // namespace cm::teams
