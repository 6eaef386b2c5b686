// `cmstream replay` and `cmstream backfill` as a user runs them: a `cmstream broker`, a live
// `cmstream run`, and the two commands as separate processes.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bridges/postgres/migrator.h"
#include "child_process.h"
#include "kafka_clients.h"
#include "processors/usage/time_util.h"
#include "snapshot_figures.h"
#include "topology/common/wall_clock.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using testing::ChildProcess;
using testing::WaitFor;

using testing::CmstreamBinary;
using testing::RunToEnd;

struct Http {
  int status = 0;
  json body;
};

Http Get(int port, const std::string& path) {
  httplib::Client c("127.0.0.1", port);
  c.set_bearer_token_auth(cm::testing::kTestAdminKey);
  c.set_connection_timeout(2);
  c.set_read_timeout(10);
  auto r = c.Get(path);
  if (!r) return {};
  return {r->status, json::parse(r->body, nullptr, false)};
}

bool Ready(int port) { return Get(port, "/ready").status == 200; }

class ReplayBackfillE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDirectory("cm-e2e");
    std::filesystem::create_directories(dir_);
    const std::string info = (dir_ / "broker.json").string();
    broker_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{CmstreamBinary(), "broker", "--info-file", info, "--topic",
                                 "count-input:4", "--topic", "cloudmatrix.events:4", "--topic",
                                 "cloudmatrix.commands:4"},
        (dir_ / "broker.log").string());
    broker_->Start();
    ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(info); }, 20s));
    json endpoints;
    std::ifstream(info) >> endpoints;
    bootstrap_ = endpoints["bootstrap"];
    admin_ = endpoints["admin"];
    producer_ = testing::NewProducer(bootstrap_);
  }
  void TearDown() override {
    producer_.reset();
    broker_->Kill(SIGTERM);
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  std::vector<std::string> BrokerFlags() const {
    return {"--brokers", bootstrap_, "--broker-admin", admin_};
  }

  std::unique_ptr<ChildProcess> StartRun(const std::string& app, const std::string& topology,
                                         const std::string& state, int port) {
    std::vector<std::string> argv{CmstreamBinary(), "run"};
    for (const auto& f : BrokerFlags()) argv.push_back(f);
    for (const auto& f :
         {std::string("--app-id"), app, std::string("--topology"), topology,
          std::string("--state-dir"), (dir_ / state).string(), std::string("--instance-id"), state,
          std::string("--http"), "127.0.0.1:" + std::to_string(port)}) {
      argv.push_back(f);
    }
    auto p = std::make_unique<ChildProcess>(argv, (dir_ / (state + ".log")).string());
    p->Start();
    return p;
  }

  int64_t TotalEnd(const std::string& topic, int partitions) {
    auto c = testing::NewClient(RD_KAFKA_CONSUMER, bootstrap_, {{"group.id", "probe"}});
    int64_t total = 0;
    for (int p = 0; p < partitions; ++p) {
      int64_t low = 0, high = 0;
      if (rd_kafka_query_watermark_offsets(c.get(), topic.c_str(), p, &low, &high, 10000) ==
          RD_KAFKA_RESP_ERR_NO_ERROR) {
        total += high;
      }
    }
    return total;
  }

  std::filesystem::path dir_;
  std::unique_ptr<ChildProcess> broker_;
  std::string bootstrap_, admin_;
  testing::Kafka producer_;
};

TEST_F(ReplayBackfillE2eTest, ReplayRefusesWhileRunningDryRunChangesNothingAndReplayRecounts) {
  const int64_t t0 = topology::WallClockMs() - 3'600'000, t1 = t0 + 1'800'000;
  constexpr int kKeys = 50;
  for (int i = 0; i < 1000; ++i) {
    testing::Produce(producer_.get(), "count-input", "key-" + std::to_string(i % kKeys), "x",
                     i < 600 ? t0 : t1);
  }
  rd_kafka_flush(producer_.get(), 10000);
  const int port = testing::FreePort();
  auto run = StartRun("e2e-rp", "counting", "a", port);
  auto counts_are = [&](int expected) {
    for (int k = 0; k < kKeys; ++k) {
      Http h = Get(port, "/v1/counts/key-" + std::to_string(k));
      if (h.status != 200 || h.body["count"] != expected) return false;
    }
    return true;
  };
  ASSERT_TRUE(WaitFor([&] { return counts_are(20); }, 60s)) << run->Log();

  std::vector<std::string> replay{
      "replay",      "--app-id",           "e2e-rp", "--topology", "counting",
      "--state-dir", (dir_ / "a").string()};
  for (const auto& f : BrokerFlags()) replay.push_back(f);
  auto with = [&](std::vector<std::string> extra) {
    auto args = replay;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  auto [refused, refused_out] = RunToEnd(with({"--from-beginning"}), dir_ / "replay-1.log");
  EXPECT_EQ(refused, 1) << refused_out;
  EXPECT_NE(refused_out.find("replay refused: instance a of e2e-rp"), std::string::npos)
      << refused_out;
  auto [to_code, to_out] =
      RunToEnd(with({"--from-beginning", "--to", "2026-01-01T00:00:00Z"}), dir_ / "replay-2.log");
  EXPECT_EQ(to_code, 2);
  EXPECT_NE(to_out.find("--to bounds a backfill"), std::string::npos) << to_out;

  ASSERT_EQ(run->Kill(SIGTERM), 0) << run->Log();
  const std::string from = usage::FormatTimestamp(t1 - 60'000);
  auto [dry, dry_out] = RunToEnd(with({"--from", from, "--dry-run"}), dir_ / "replay-3.log");
  ASSERT_EQ(dry, 0) << dry_out;
  EXPECT_NE(dry_out.find("dry run, nothing is changed"), std::string::npos) << dry_out;
  EXPECT_NE(dry_out.find("input count-input[0]: group offset"), std::string::npos) << dry_out;
  EXPECT_NE(dry_out.find("changelog e2e-rp-counts-changelog[0]: reads begin at 0 -> "),
            std::string::npos)
      << dry_out;
  EXPECT_NE(dry_out.find("delete " + (dir_ / "a" / "e2e-rp").string()), std::string::npos)
      << dry_out;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "a" / "e2e-rp"));
  EXPECT_EQ(TotalEnd("e2e-rp-resets", 1), 0) << "a dry run writes no marker";

  auto [done, done_out] = RunToEnd(with({"--from", from}), dir_ / "replay-4.log");
  ASSERT_EQ(done, 0) << done_out;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "a" / "e2e-rp"));
  EXPECT_EQ(TotalEnd("e2e-rp-resets", 1), 1);

  // Restarted, the application counts only the 400 records from --from on: 8 per key.
  run = StartRun("e2e-rp", "counting", "a", port);
  EXPECT_TRUE(WaitFor([&] { return counts_are(8); }, 60s)) << run->Log();
  EXPECT_EQ(run->Kill(SIGTERM), 0);
}

// Usage events for one org, `n` of them spread over the hour starting at `hour`, with the
// record timestamp equal to the event time.
void ProduceHour(rd_kafka_t* producer, int64_t hour, int n, int from_index = 0, int to_index = -1) {
  if (to_index < 0) to_index = n;
  for (int i = from_index; i < to_index; ++i) {
    const int64_t ts = hour + static_cast<int64_t>(i) * 3'600'000 / n;
    const std::string org = "org-" + std::to_string(i % 5);
    json e = {{"eventId", "e-" + std::to_string(hour) + "-" + std::to_string(i)},
              {"organizationId", org},
              {"userId", "u" + std::to_string(i % 17)},
              {"timestamp", ts}};
    if (i % 3 == 0) {
      e["eventType"] = "storage.upload";
      e["quantity"] = 1000 + i;
    } else {
      e["eventType"] = "api.call";
    }
    if (i % 97 == 5) e["quantity"] = -1;  // invalid: to the DLQ
    testing::Produce(producer, "cloudmatrix.events", org, e.dump(), ts);
  }
  rd_kafka_flush(producer, 10000);
}

// How many of the events [from, to) of an hour ProduceHour makes invalid.
int Invalid(int from, int to) {
  int n = 0;
  for (int i = from; i < to; ++i) n += i % 97 == 5 ? 1 : 0;
  return n;
}

TEST_F(ReplayBackfillE2eTest, BackfillOfARangeEqualsTheLiveFiguresWithoutSideEffects) {
  const int64_t kHour = 3'600'000;
  const int64_t base = topology::WallClockMs() / kHour * kHour - 4 * kHour;
  const int64_t a = base, b = base + kHour, c = base + 2 * kHour;
  constexpr int kPerHour = 600;
  const int live_port = testing::FreePort();
  auto live = StartRun("e2e-live", "cloudmatrix", "live", live_port);
  ASSERT_TRUE(WaitFor([&] { return Ready(live_port); }, 60s)) << live->Log();
  ProduceHour(producer_.get(), a, kPerHour);
  ProduceHour(producer_.get(), b, kPerHour);
  ProduceHour(producer_.get(), c, kPerHour, 0, kPerHour / 2);

  auto metrics = [](int port, const std::string& org, int64_t from, int64_t to,
                    const std::string& granularity) {
    return Get(port, "/v1/usage/orgs/" + org + "/metrics?granularity=" + granularity +
                         "&startTime=" + std::to_string(from) + "&endTime=" + std::to_string(to));
  };
  const int invalid = Invalid(0, kPerHour);
  // The valid events of one hour, over the 5 orgs.
  auto events_in = [&](int port, int64_t hour, int expected) {
    int total = 0;
    for (int o = 0; o < 5; ++o) {
      Http h = metrics(port, "org-" + std::to_string(o), hour, hour + kHour, "hour");
      if (h.status != 200) return false;
      total += h.body["totals"].value("events", 0);
    }
    return total == expected;
  };
  ASSERT_TRUE(WaitFor([&] { return events_in(live_port, b, kPerHour - invalid); }, 60s))
      << live->Log();
  ASSERT_TRUE(WaitFor(
      [&] { return TotalEnd("cloudmatrix.dlq", 8) == 2 * invalid + Invalid(0, kPerHour / 2); },
      60s));
  const int64_t alerts_before = TotalEnd("cloudmatrix.quota-alerts", 4);

  // The backfill snapshots into a Postgres schema of its own.
  const std::string schema = testing::UniqueSchema("e2e_backfill");
  postgres::MigratorOptions mo;
  mo.database_url = testing::DatabaseUrl();
  mo.schema = schema;
  mo.migrations_dir = std::string(CM_SOURCE_DIR) + "/migrations";
  ASSERT_TRUE(postgres::Migrator::Run(mo).ok());

  const int bf_port = testing::FreePort();
  std::vector<std::string> argv{CmstreamBinary(), "backfill"};
  for (const auto& f : BrokerFlags()) argv.push_back(f);
  for (const auto& f : {std::string("--app-id"),
                        std::string("e2e-bf"),
                        std::string("--topology"),
                        std::string("cloudmatrix"),
                        std::string("--from"),
                        usage::FormatTimestamp(b),
                        std::string("--to"),
                        usage::FormatTimestamp(c),
                        std::string("--state-dir"),
                        (dir_ / "bf").string(),
                        std::string("--http"),
                        "127.0.0.1:" + std::to_string(bf_port),
                        std::string("--exit-when-done"),
                        std::string("false"),
                        std::string("--database-url"),
                        std::string(testing::DatabaseUrl()),
                        std::string("--database-schema"),
                        schema,
                        std::string("--snapshot-interval"),
                        std::string("500ms")}) {
    argv.push_back(f);
  }
  ChildProcess backfill(argv, (dir_ / "backfill.log").string());
  backfill.Start();
  // The live application keeps going while the backfill runs.
  ProduceHour(producer_.get(), c, kPerHour, kPerHour / 2, kPerHour);

  json summary;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::istringstream lines(backfill.Log());
        for (std::string line; std::getline(lines, line);) {
          auto j = json::parse(line, nullptr, false);
          if (j.is_object() && j.contains("applicationId") && j.contains("records")) {
            summary = j;
            return true;
          }
        }
        return false;
      },
      90s))
      << backfill.Log();
  EXPECT_EQ(summary["records"], kPerHour) << "every record of [from, to) and nothing else";
  EXPECT_NE(backfill.Log().find("\"event\":\"backfill_done\""), std::string::npos)
      << "not on a terminal: progress goes to the log";

  // The backfill's figures for the range are the live application's figures for it.
  for (int o = 0; o < 5; ++o) {
    const std::string org = "org-" + std::to_string(o);
    for (const char* g : {"hour", "minute"}) {
      Http live_h = metrics(live_port, org, b, c, g);
      Http bf_h = metrics(bf_port, org, b, c, g);
      ASSERT_EQ(live_h.status, 200) << live_h.body.dump();
      ASSERT_EQ(bf_h.status, 200) << bf_h.body.dump();
      EXPECT_EQ(bf_h.body, live_h.body) << org << " " << g;
      EXPECT_GT(bf_h.body["totals"].value("events", 0), 0) << bf_h.body.dump();
    }
    // Nothing before the range was counted.
    Http before = metrics(bf_port, org, a, b, "hour");
    EXPECT_EQ(before.body["totals"].value("events", -1), 0) << before.body.dump();
  }
  // Its Postgres schema holds the same figures as its HTTP API.
  httplib::Client client("127.0.0.1", bf_port);
  client.set_bearer_token_auth(cm::testing::kTestAdminKey);
  EXPECT_TRUE(WaitFor(
      [&] {
        return testing::PgEqualsHttp(client, schema, {"org-0", "org-1", "org-2", "org-3", "org-4"});
      },
      60s))
      << "the backfill's snapshot schema " << schema << " differs from its HTTP figures";
  // Read-only: a backfill appends nothing to the live topics.
  auto post = client.Post(
      "/v1/usage/events",
      json({{"eventId", "x"}, {"organizationId", "org-0"}, {"eventType", "api.call"}}).dump(),
      "application/json");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 409) << post->body;

  // No side effects: the live DLQ holds only the live application's rejections; the
  // backfill's went to its own topic. The alert topic did not grow.
  EXPECT_TRUE(WaitFor([&] { return events_in(live_port, c, kPerHour - invalid); }, 60s))
      << "the live application processed the input that arrived during the backfill";
  EXPECT_TRUE(WaitFor([&] { return TotalEnd("cloudmatrix.dlq", 8) == 3 * invalid; }, 30s));
  EXPECT_TRUE(WaitFor([&] { return TotalEnd("e2e-bf-cloudmatrix.dlq", 8) == invalid; }, 30s));
  EXPECT_EQ(TotalEnd("cloudmatrix.dlq", 8), 3 * invalid) << "nothing from the backfill";
  EXPECT_EQ(TotalEnd("cloudmatrix.quota-alerts", 4), alerts_before);
  EXPECT_EQ(TotalEnd("cloudmatrix.events", 4), 3 * kPerHour);

  int status = backfill.Kill(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << backfill.Log();
  EXPECT_EQ(live->Kill(SIGTERM), 0) << live->Log();
  if (!HasFailure()) testing::DropSchema(schema);
}

}  // namespace
}  // namespace cm
