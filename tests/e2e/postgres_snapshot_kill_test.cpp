// A `cmstream run` with Postgres snapshots is killed with SIGKILL after commits it may not yet
// have snapshotted, and restarted: on task start it compares the offsets Postgres holds with
// its own and snapshots in full where they differ, so Postgres ends equal to HTTP.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bridges/postgres/migrator.h"
#include "child_process.h"
#include "snapshot_figures.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;

bool Ready(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_bearer_token_auth(cm::testing::kTestAdminKey);
  c.set_connection_timeout(1);
  auto r = c.Get("/ready");
  return r && r->status == 200;
}

bool PostEvents(int port, const std::string& org, int n, const std::string& tag) {
  json batch = {{"events", json::array()}};
  const char* types[] = {"api.call", "storage.upload", "document.created", "presence.joined"};
  const int64_t now = topology::WallClockMs();
  for (int i = 0; i < n; ++i) {
    batch["events"].push_back({{"eventId", tag + "-" + org + "-" + std::to_string(i)},
                               {"organizationId", org},
                               {"userId", "user-" + std::to_string(i % 11)},
                               {"eventType", types[i % 4]},
                               {"quantity", 2.5 * (i % 3)},
                               {"timestamp", now - 60'000 + i}});
  }
  httplib::Client c("127.0.0.1", port);
  c.set_bearer_token_auth(cm::testing::kTestAdminKey);
  c.set_read_timeout(30, 0);
  auto r = c.Post("/v1/usage/events", batch.dump(), "application/json");
  return r && r->status == 202;
}

TEST(PostgresSnapshotKillTest, PostgresEqualsHttpAfterSigkillAndRestart) {
  const std::string schema = testing::UniqueSchema("e2e_snapshot");
  postgres::MigratorOptions mo;
  mo.database_url = testing::DatabaseUrl();
  mo.schema = schema;
  mo.migrations_dir = std::string(CM_SOURCE_DIR) + "/migrations";
  ASSERT_TRUE(postgres::Migrator::Run(mo).ok());

  auto dir = std::filesystem::temp_directory_path() / ("cm-e2e-snapshot-" + schema);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string binary = std::string(CM_BINARY_DIR) + "/cmstream";
  const std::string info = (dir / "broker.json").string();
  ChildProcess broker(
      {binary, "broker", "--info-file", info, "--topic", "cloudmatrix.events:4", "--topic",
       "cloudmatrix.commands:4", "--topic", "cloudmatrix.quota-alerts:4"},
      (dir / "broker.log").string());
  broker.Start();
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(info); }, 20s));
  json endpoints;
  std::ifstream(info) >> endpoints;

  const int port = testing::FreePort();
  int starts = 0;
  auto start = [&] {
    auto p = std::make_unique<ChildProcess>(
        std::vector<std::string>{binary,
                                 "run",
                                 "--topology",
                                 "cloudmatrix",
                                 "--brokers",
                                 endpoints["bootstrap"],
                                 "--broker-admin",
                                 endpoints["admin"],
                                 "--app-id",
                                 "e2e-snapshot",
                                 "--instance-id",
                                 "a",
                                 "--state-dir",
                                 (dir / "state").string(),
                                 "--http",
                                 "127.0.0.1:" + std::to_string(port),
                                 "--database-url",
                                 testing::DatabaseUrl(),
                                 "--database-schema",
                                 schema,
                                 "--snapshot-interval",
                                 "2s"},
        (dir / ("run-" + std::to_string(++starts) + ".log")).string());
    p->Start();
    return p;
  };
  const std::vector<std::string> orgs = {"org-a", "org-b", "org-c", "org-d", "org-e"};
  httplib::Client client("127.0.0.1", port);
  client.set_bearer_token_auth(cm::testing::kTestAdminKey);
  client.set_read_timeout(30, 0);

  auto run = start();
  ASSERT_TRUE(WaitFor([&] { return Ready(port); }, 60s)) << run->Log();
  for (const auto& org : orgs) ASSERT_TRUE(PostEvents(port, org, 300, "one"));
  ASSERT_TRUE(WaitFor([&] { return testing::HttpCountsReach(client, orgs, 300); }, 60s));
  ASSERT_TRUE(WaitFor([&] { return testing::PgEqualsHttp(client, schema, orgs); }, 60s));

  // More events, committed (HTTP shows them) but, with a 2 s interval, most likely not yet
  // snapshotted when the process dies.
  const auto before = testing::HttpPoints(client, "org-a", "hour");
  for (const auto& org : orgs) ASSERT_TRUE(PostEvents(port, org, 300, "two"));
  ASSERT_TRUE(WaitFor([&] { return testing::HttpPoints(client, "org-a", "hour") != before; }, 30s));
  run->Kill(SIGKILL);

  run = start();
  ASSERT_TRUE(WaitFor([&] { return Ready(port); }, 60s)) << run->Log();
  for (const auto& org : orgs) ASSERT_TRUE(PostEvents(port, org, 300, "three"));
  ASSERT_TRUE(WaitFor([&] { return testing::HttpCountsReach(client, orgs, 900); }, 60s));
  ASSERT_TRUE(WaitFor([&] { return testing::PgEqualsHttp(client, schema, orgs); }, 60s))
      << run->Log();
  // Every event counted once in Postgres too: 900 per organization.
  EXPECT_EQ(testing::EventCount(testing::HttpPoints(client, "org-a", "day")), 900);
  EXPECT_EQ(testing::EventCount(testing::PgPoints(schema, "org-a", "day")), 900);
  EXPECT_EQ(testing::EventCount(testing::PgPoints(schema, "org-a", "month")), 900);
  const std::string log = run->Log();
  std::printf("full snapshots after the restart: %s\n",
              log.find("\"snapshot_full\"") != std::string::npos ? "yes" : "no");
  run->Kill(SIGTERM);
  testing::DropSchema(schema);
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cm
