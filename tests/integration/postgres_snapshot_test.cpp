// Postgres snapshots and migrations against the real Postgres of ops/services: `migrate`
// applies each file once and refuses an edited one; a usage application snapshots rows whose
// values equal the HTTP figures, through rollups (deleted fine buckets) and a Postgres outage.
// Every test works in a schema of its own, dropped at the end.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <random>
#include <thread>

#include "bridges/postgres/migrator.h"
#include "bridges/postgres/snapshotter.h"
#include "child_process.h"
#include "kafka_clients.h"
#include "processors/usage/time_util.h"
#include "processors/usage/usage_snapshot_schema.h"
#include "snapshot_figures.h"
#include "tcp_proxy.h"
#include "topology/common/wall_clock.h"
#include "usage_instance.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

using testing::DatabaseUrl;
using testing::DropSchema;
using testing::Points;
using testing::UniqueSchema;

postgres::MigratorOptions MigrateOptions(const std::string& schema, const std::string& dir) {
  postgres::MigratorOptions o;
  o.database_url = DatabaseUrl();
  o.schema = schema;
  o.migrations_dir = dir;
  return o;
}

// The migrations of the source tree, by name without ".sql", in the order they apply.
std::vector<std::string> SourceMigrations() {
  std::vector<std::string> names;
  for (const auto& f :
       std::filesystem::directory_iterator(std::string(CM_SOURCE_DIR) + "/migrations"))
    if (f.path().extension() == ".sql") names.push_back(f.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

class MigrateTest : public ::testing::Test {
 protected:
  void TearDown() override { DropSchema(schema_); }
  std::string schema_ = UniqueSchema("it_migrate");
};

TEST_F(MigrateTest, AppliesEachFileOnceAndRefusesAnEditedAppliedFile) {
  const std::string source = std::string(CM_SOURCE_DIR) + "/migrations";
  auto first = postgres::Migrator::Run(MigrateOptions(schema_, source));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  const std::vector<std::string> migrations = SourceMigrations();
  ASSERT_GE(migrations.size(), 3u);  // usage's tables, teams', webhooks'
  EXPECT_EQ(migrations.front(), "0001_snapshot_tables");
  EXPECT_EQ(first->applied, migrations);
  auto again = postgres::Migrator::Run(MigrateOptions(schema_, source));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->applied.empty());
  EXPECT_EQ(again->already_applied, migrations);
  {
    pqxx::connection conn(DatabaseUrl());
    pqxx::read_transaction tx(conn);
    auto r = tx.exec("SELECT name, length(checksum) FROM " + tx.quote_name(schema_) +
                     ".schema_migrations");
    ASSERT_EQ(r.size(), migrations.size());
    for (const auto& row : r) EXPECT_EQ(row[1].as<int>(), 64);  // SHA-256, hex
  }

  // An edited copy of the applied file, and a new one after it.
  auto dir = std::filesystem::temp_directory_path() / ("cm-it-migrations-" + schema_);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::filesystem::copy(source, dir);
  std::ofstream(dir / "9999_more.sql") << "CREATE TABLE extra (id int PRIMARY KEY);\n";
  auto second = postgres::Migrator::Run(MigrateOptions(schema_, dir.string()));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->applied, std::vector<std::string>{"9999_more"});
  std::ofstream(dir / "0001_snapshot_tables.sql", std::ios::app) << "-- edited\n";
  auto edited = postgres::Migrator::Run(MigrateOptions(schema_, dir.string()));
  ASSERT_FALSE(edited.ok());
  EXPECT_EQ(edited.status().code(), state::Status::Code::kConflict);
  EXPECT_NE(edited.status().message().find("0001_snapshot_tables was changed"), std::string::npos)
      << edited.status().message();
  std::filesystem::remove_all(dir);
}

TEST_F(MigrateTest, ConcurrentRunsApplyEachFileOnce) {
  const std::string source = std::string(CM_SOURCE_DIR) + "/migrations";
  std::vector<std::thread> runs;
  std::atomic<int> ok{0}, applied{0};
  for (int i = 0; i < 4; ++i) {
    runs.emplace_back([&] {
      auto r = postgres::Migrator::Run(MigrateOptions(schema_, source));
      if (r.ok()) {
        ++ok;
        applied += static_cast<int>(r->applied.size());
      }
    });
  }
  for (auto& t : runs) t.join();
  EXPECT_EQ(ok, 4);
  // Each file once, whichever run applied it.
  EXPECT_EQ(applied, static_cast<int>(SourceMigrations().size()));
}

class PostgresSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        postgres::Migrator::Run(MigrateOptions(schema_, std::string(CM_SOURCE_DIR) + "/migrations"))
            .ok());
    dir_ = std::filesystem::temp_directory_path() / ("cm-it-snapshot-" + schema_);
    std::filesystem::remove_all(dir_);
    auto broker = testing::StartUsageBroker(2);
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
    // Minute buckets are kept one hour, so that a record an hour and more ahead rolls them up.
    usage::UsageOptions options;
    options.retention.minute_ms = usage::kHourMs;
    options.maintenance_interval_ms = 1000;
    options.rollup_interval_ms = 1000;

    proxy_ = std::make_unique<testing::TcpProxy>(5432);
    postgres::SnapshotterOptions so;
    so.database_url =
        "postgresql://cmstream:cmstream@127.0.0.1:" + std::to_string(proxy_->port()) + "/cmstream";
    so.schema = schema_;
    so.interval = 200ms;
    so.min_backoff = 100ms;
    snapshotter_ =
        std::make_unique<postgres::Snapshotter>(usage::UsageSnapshotSchema(options.catalog), so);
    snapshotter_->Start();

    instance_ = std::make_unique<testing::UsageInstance>(
        *broker_, testing::UsageInstanceOptions{.application_id = "it-snapshot",
                                                .state_dir = (dir_ / "state").string(),
                                                .usage = options,
                                                .snapshot_listener = snapshotter_.get()});
    auto started = instance_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
    client_ = &instance_->client();
  }

  void TearDown() override {
    instance_.reset();
    if (snapshotter_) snapshotter_->Stop();
    proxy_.reset();
    DropSchema(schema_);
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  void PostEvents(const std::string& org, int n, int64_t event_time, const std::string& tag) {
    json batch = {{"events", json::array()}};
    const char* types[] = {"api.call", "storage.upload", "document.created", "presence.joined"};
    for (int i = 0; i < n; ++i) {
      batch["events"].push_back({{"eventId", tag + "-" + org + "-" + std::to_string(i)},
                                 {"organizationId", org},
                                 {"userId", "user-" + std::to_string(i % 7)},
                                 {"eventType", types[i % 4]},
                                 {"resourceId", "doc-" + std::to_string(i % 5)},
                                 {"resourceType", "document"},
                                 {"quantity", 1.5 * (i % 3)},
                                 {"timestamp", event_time + i}});
    }
    auto r = client_->Post("/v1/usage/events", batch.dump(), "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
  }

  Points HttpPoints(const std::string& org, const std::string& g) {
    return testing::HttpPoints(*client_, org, g);
  }
  Points PgPoints(const std::string& org, const std::string& g) {
    return testing::PgPoints(schema_, org, g);
  }

  std::string Diff(const std::string& org, const std::string& g) {
    Points http = HttpPoints(org, g), pg = PgPoints(org, g);
    std::string out = "http " + std::to_string(http.size()) + " points, postgres " +
                      std::to_string(pg.size()) + ";";
    for (const auto& [k, v] : http) {
      auto it = pg.find(k);
      if (it == pg.end() || it->second != v) {
        out += " " + k.first + "@" + std::to_string(k.second) + " http=" + std::to_string(v) +
               " pg=" + (it == pg.end() ? "none" : std::to_string(it->second));
      }
    }
    return out;
  }

  bool PgEqualsHttp(const std::vector<std::string>& orgs) {
    return testing::PgEqualsHttp(*client_, schema_, orgs);
  }

  std::string schema_ = UniqueSchema("it_snapshot");
  std::filesystem::path dir_;
  std::unique_ptr<testing::TestBroker> broker_;
  std::unique_ptr<testing::TcpProxy> proxy_;
  std::unique_ptr<postgres::Snapshotter> snapshotter_;
  std::unique_ptr<testing::UsageInstance> instance_;
  httplib::Client* client_ = nullptr;
};

TEST_F(PostgresSnapshotTest, RowsEqualHttpFiguresThroughAnOutageAndARollup) {
  const std::vector<std::string> orgs = {"org-a", "org-b", "org-c"};
  const int64_t now = topology::WallClockMs();
  for (const auto& org : orgs) PostEvents(org, 200, now - 10 * usage::kMinuteMs, "first");
  ASSERT_TRUE(testing::WaitFor([&] { return testing::HttpCountsReach(*client_, orgs, 200); }, 30s));
  ASSERT_TRUE(testing::WaitFor([&] { return PgEqualsHttp(orgs); }, 30s))
      << "Postgres never matched HTTP: " << Diff("org-a", "hour");
  EXPECT_GT(snapshotter_->Metrics().rows_written, 0u);

  // Postgres unreachable: processing goes on, snapshots fail and keep their rows.
  proxy_->Cut();
  const Points before = PgPoints("org-a", "hour");
  const uint64_t failures = snapshotter_->Metrics().failures;
  for (const auto& org : orgs) PostEvents(org, 100, now - 5 * usage::kMinuteMs, "second");
  ASSERT_TRUE(testing::WaitFor([&] { return HttpPoints("org-a", "hour") != before; }, 30s))
      << "HTTP figures did not advance during the outage";
  ASSERT_TRUE(
      testing::WaitFor([&] { return snapshotter_->Metrics().failures >= failures + 2; }, 30s));
  EXPECT_EQ(PgPoints("org-a", "hour"), before);
  ASSERT_TRUE(testing::WaitFor([&] { return testing::HttpCountsReach(*client_, orgs, 300); }, 30s));
  EXPECT_GT(snapshotter_->Metrics().pending_changes, 0u);
  EXPECT_EQ(PgPoints("org-a", "hour"), before);
  proxy_->Open();
  ASSERT_TRUE(testing::WaitFor([&] { return PgEqualsHttp(orgs); }, 30s))
      << "snapshots did not resume";
  EXPECT_EQ(snapshotter_->Metrics().pending_changes, 0u);

  // A record two hours ahead moves org-a's stream time past the minute retention: the rollup
  // deletes its minute buckets, and Postgres deletes their rows.
  ASSERT_FALSE(PgPoints("org-a", "minute").empty());
  auto producer = testing::NewProducer(broker_->bootstrap_servers());
  const int64_t ahead = now + 2 * usage::kHourMs;
  const std::string event = json({{"eventId", "ahead-1"},
                                  {"organizationId", "org-a"},
                                  {"userId", "user-1"},
                                  {"eventType", "api.call"},
                                  {"timestamp", ahead}})
                                .dump();
  const std::string key = "org-a";
  ASSERT_EQ(rd_kafka_producev(producer.get(), RD_KAFKA_V_TOPIC("cloudmatrix.events"),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                              RD_KAFKA_V_VALUE(const_cast<char*>(event.data()), event.size()),
                              RD_KAFKA_V_TIMESTAMP(ahead), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_flush(producer.get(), 10000);
  auto early_minutes = [&] {
    int n = 0;
    for (const auto& [k, v] : PgPoints("org-a", "minute")) n += k.second < ahead - usage::kHourMs;
    return n;
  };
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        if (early_minutes() != 0) return false;
        for (const char* g : {"hour", "day"}) {
          if (HttpPoints("org-a", g) != PgPoints("org-a", g)) return false;
        }
        return true;
      },
      30s))
      << "rolled-up minute rows are still in Postgres: " << early_minutes();
  for (const auto& org : orgs) {
    for (const char* g : {"minute", "hour", "day"}) {
      EXPECT_EQ(PgPoints(org, g), HttpPoints(org, g)) << org << " " << g;
    }
  }
}

}  // namespace
}  // namespace cm
