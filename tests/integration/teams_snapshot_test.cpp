// The teams stores snapshotted to the real Postgres of ops/services through the same
// snapshotter as usage (migrations/0002_teams_snapshot_tables.sql): rows equal what HTTP
// answers, the invitation row holds the token's hash and never the token, and the README's
// recursive-CTE hierarchy query over the snapshot agrees with GET .../hierarchy.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>
#include <thread>

#include "bridges/postgres/migrator.h"
#include "bridges/postgres/snapshotter.h"
#include "kafka_clients.h"
#include "processors/teams/teams_snapshot_schema.h"
#include "processors/usage/usage_snapshot_schema.h"
#include "snapshot_figures.h"
#include "topology/common/crypto.h"
#include "usage_instance.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class TeamsSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    postgres::MigratorOptions m;
    m.database_url = testing::DatabaseUrl();
    m.schema = schema_;
    m.migrations_dir = std::string(CM_SOURCE_DIR) + "/migrations";
    ASSERT_TRUE(postgres::Migrator::Run(m).ok());
    dir_ = std::filesystem::temp_directory_path() / ("cm-it-teams-snapshot-" + schema_);
    std::filesystem::remove_all(dir_);
    auto broker = testing::StartUsageBroker(2);
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
    topology::SnapshotSchema schema = usage::UsageSnapshotSchema(usage::DefaultCatalog());
    for (auto& t : teams::TeamsSnapshotSchema().tables) schema.tables.push_back(std::move(t));
    postgres::SnapshotterOptions so;
    so.database_url = testing::DatabaseUrl();
    so.schema = schema_;
    so.interval = 200ms;
    so.min_backoff = 100ms;
    snapshotter_ = std::make_unique<postgres::Snapshotter>(std::move(schema), so);
    snapshotter_->Start();
    instance_ = std::make_unique<testing::UsageInstance>(
        *broker_, testing::UsageInstanceOptions{.application_id = "it-teams-snapshot",
                                                .state_dir = (dir_ / "state").string(),
                                                .snapshot_listener = snapshotter_.get()});
    auto started = instance_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
  }
  void TearDown() override {
    instance_.reset();
    if (snapshotter_) snapshotter_->Stop();
    testing::DropSchema(schema_);
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // The admin key acts as `actor`.
  json Call(const std::string& method, const std::string& path, json body, const std::string& actor,
            int expected) {
    body["actorUserId"] = actor;
    auto& c = instance_->client();
    auto r = method == "POST" ? c.Post(path, body.dump(), "application/json") : c.Get(path);
    EXPECT_TRUE(r);
    if (!r) return json();
    EXPECT_EQ(r->status, expected) << method << " " << path << ": " << r->body;
    return json::parse(r->body, nullptr, false);
  }

  std::set<std::string> Column(const std::string& sql) {
    pqxx::connection conn(testing::DatabaseUrl());
    pqxx::read_transaction tx(conn);
    std::set<std::string> out;
    for (const auto& row :
         tx.exec("SET LOCAL search_path TO " + tx.quote_name(schema_) + "; " + sql))
      out.insert(row[0].is_null() ? "NULL" : row[0].as<std::string>());
    return out;
  }

  // Waits until `sql`'s first column is `expected` (the snapshot runs every 200 ms).
  void AwaitRows(const std::string& sql, const std::set<std::string>& expected) {
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    std::set<std::string> got;
    while (std::chrono::steady_clock::now() < deadline) {
      got = Column(sql);
      if (got == expected) return;
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << sql << "\ngot " << json(got).dump() << "\nwant " << json(expected).dump();
  }

  std::string schema_ = testing::UniqueSchema("it_teams_snapshot");
  std::filesystem::path dir_;
  std::unique_ptr<testing::TestBroker> broker_;
  std::unique_ptr<postgres::Snapshotter> snapshotter_;
  std::unique_ptr<testing::UsageInstance> instance_;
};

TEST_F(TeamsSnapshotTest, TeamsMembershipsInvitationsAndPermissionsReachPostgres) {
  json root =
      Call("POST", "/v1/teams", {{"organizationId", "org-s"}, {"name", "Root"}}, "alice", 201);
  const std::string r = root["id"];
  json mid =
      Call("POST", "/v1/teams", {{"organizationId", "org-s"}, {"name", "Mid"}, {"parentTeamId", r}},
           "alice", 201);
  const std::string m = mid["id"];
  json leaf =
      Call("POST", "/v1/teams",
           {{"organizationId", "org-s"}, {"name", "Leaf"}, {"parentTeamId", m}}, "alice", 201);
  const std::string l = leaf["id"];
  Call("POST", "/v1/teams/" + m + "/members", {{"userId", "bob"}, {"role", "admin"}}, "alice", 201);
  json inv = Call("POST", "/v1/teams/" + l + "/invitations", {{"email", "carol@example.com"}},
                  "alice", 201);
  const std::string token = inv["token"];

  AwaitRows(
      "SELECT team_id || ':' || name || ':' || coalesce(parent_team_id, 'NULL') "
      "FROM teams_teams WHERE organization_id = 'org-s'",
      {r + ":Root:NULL", m + ":Mid:" + r, l + ":Leaf:" + m});
  AwaitRows("SELECT team_id || ':' || user_id || ':' || role FROM teams_memberships",
            {r + ":alice:owner", m + ":alice:owner", l + ":alice:owner", m + ":bob:admin"});
  // Bob's admin role in Mid is materialized in Mid and in Leaf below it, as HTTP says.
  AwaitRows(
      "SELECT team_id || ':' || role || ':' || granted_by_team FROM teams_permissions "
      "WHERE user_id = 'bob'",
      {m + ":admin:" + m, l + ":admin:" + m});
  json effective = Call("GET", "/v1/teams/" + l + "/permissions/bob", json::object(), "", 200);
  std::set<std::string> http_permissions, pg_permissions;
  for (const auto& p : effective["permissions"]) http_permissions.insert(p.get<std::string>());
  for (const auto& p : json::parse(*Column("SELECT permissions::text FROM teams_permissions "
                                           "WHERE user_id = 'bob' AND team_id = '" +
                                           l + "'")
                                        .begin()))
    pg_permissions.insert(p.get<std::string>());
  EXPECT_EQ(pg_permissions, http_permissions);

  // The invitation: its hash, never the token.
  AwaitRows("SELECT status || ':' || token_sha256 FROM teams_invitations",
            {"pending:" + topology::HexEncode(topology::Sha256(token))});
  for (const char* table :
       {"teams_teams", "teams_memberships", "teams_invitations", "teams_permissions"}) {
    EXPECT_TRUE(Column("SELECT t::text FROM " + std::string(table) + " t WHERE t::text LIKE '%" +
                       token.substr(token.find('.') + 1) + "%'")
                    .empty())
        << table;
  }

  // The README's recursive CTE: the descendants of Root, with depth.
  const std::set<std::string> descendants = Column(R"(
    WITH RECURSIVE tree AS (
      SELECT team_id, 0 AS depth FROM teams_teams
       WHERE organization_id = 'org-s' AND team_id = ')" +
                                                   r + R"('
      UNION ALL
      SELECT t.team_id, tree.depth + 1 FROM teams_teams t
        JOIN tree ON t.organization_id = 'org-s' AND t.parent_team_id = tree.team_id)
    SELECT team_id || '@' || depth FROM tree WHERE depth > 0)");
  EXPECT_EQ(descendants, (std::set<std::string>{m + "@1", l + "@2"}));
  json hierarchy =
      Call("GET", "/v1/teams/" + r + "/hierarchy?direction=descendants", json::object(), "", 200);
  EXPECT_EQ(hierarchy["descendants"].size(), 1u) << hierarchy.dump();  // Mid, holding Leaf

  // A removal deletes the row.
  auto& c = instance_->client();
  auto removed =
      c.Delete("/v1/teams/" + m + "/members/bob", R"({"actorUserId":"alice"})", "application/json");
  ASSERT_TRUE(removed);
  ASSERT_EQ(removed->status, 200) << removed->body;
  AwaitRows("SELECT team_id FROM teams_permissions WHERE user_id = 'bob'", {});
}

}  // namespace
}  // namespace cm
