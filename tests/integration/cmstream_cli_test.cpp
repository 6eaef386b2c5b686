// The cmstream command line refuses bad flags with exit code 2 and a message that names the
// flag, before it starts anything (no terminate on a bad number, no half-started broker).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "child_process.h"

namespace cm {
namespace {

using ::testing::HasSubstr;
using testing::RunToEnd;

class CmstreamCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDirectory("cm-cli");
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::pair<int, std::string> Run(const std::vector<std::string>& args) {
    return RunToEnd(args, dir_ / ("run-" + std::to_string(++runs_) + ".log"));
  }

  std::filesystem::path dir_;
  int runs_ = 0;
};

// `broker --topic NAME:N` with a bad N once ended in std::terminate (issue 15).
TEST_F(CmstreamCliTest, BrokerRefusesABadTopicSpecWithExitCode2) {
  for (const char* spec : {"t:abc", "t:0", "t:-3", "t:4x", "t:99999999999", ":4"}) {
    auto [code, out] = Run({"broker", "--topic", spec});
    EXPECT_EQ(code, 2) << spec << ": " << out;
    EXPECT_THAT(out, HasSubstr(std::string("--topic ") + spec)) << out;
  }
}

TEST_F(CmstreamCliTest, RunRefusesBadFlagsWithExitCode2) {
  const std::string state = (dir_ / "state").string();
  struct Case {
    std::vector<std::string> args;
    const char* says;
  };
  for (const Case& c :
       {Case{{"--topology", "nope"}, "unknown --topology 'nope'"},
        Case{{"--http-max-body", "lots"}, "--http-max-body"},
        Case{{"--guarantee", "maybe"}, "--guarantee must be"},
        Case{{"--commit-interval", "soon"}, "--commit-interval"},
        Case{{"--count-emit", "sometimes"}, "--count-emit must be every-update or per-commit"},
        Case{{"--count-emit", "per-commit"}, "--count-emit applies to --topology counting only"},
        Case{{"--http-rate-limit", "fast"}, "--http-rate-limit"},
        Case{{"--http-request-timeout", "0s"}, "--http-request-timeout"},
        // The usage application's input limits (README "Configuration").
        Case{{"--max-batch-events", "0"}, "--max-batch-events must be positive"},
        Case{{"--max-id-bytes=-1"}, "--max-id-bytes must be positive"},
        Case{{"--max-query-buckets", "0"}, "--max-query-buckets must be positive"},
        Case{{"--max-json-depth", "2"}, "--max-json-depth must be 3"},
        Case{{"--max-json-depth", "65"}, "--max-json-depth must be 3"},
        Case{{"--max-event-bytes", "0"}, "--max-event-bytes must be positive"},
        Case{{"--max-event-bytes", "lots"}, "--max-event-bytes"},
        Case{{"--max-event-bytes", "2MiB"}, "must not exceed --http-max-body"},
        Case{{"--max-report-range", "0d"}, "--max-report-range"},
        // Invitation emails (README "Teams"): the mailer rebuilds tokens from
        // the cluster secret, so SMTP without one is refused.
        Case{{"--cluster-secret", "", "--smtp-url", "smtp://127.0.0.1:25"},
             "--smtp-url needs --cluster-secret"},
        Case{{"--smtp-url", "http://mail.example.com"}, "--smtp-url must be"},
        Case{{"--smtp-url", "smtp://127.0.0.1:25", "--smtp-from", "nobody"}, "--smtp-from"},
        Case{{"--smtp-url", "smtp://127.0.0.1:25", "--smtp-max-age", "0s"}, "--smtp-max-age"}}) {
    std::vector<std::string> args{"run", "--embedded", "--state-dir",
                                  state, "--http",     "127.0.0.1:0"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto [code, out] = Run(args);
    EXPECT_EQ(code, 2) << c.says << ": " << out;
    EXPECT_THAT(out, HasSubstr(c.says)) << out;
  }
}

// `cmstream apikey` writes through the broker what the admin routes write: the first admin key
// only on a topic without one, keys listed without secrets, revocations, and a running
// instance authenticates with exactly those keys.
TEST_F(CmstreamCliTest, ApiKeyCommandCreatesListsAndRevokesKeysThatInstancesUse) {
  using namespace std::chrono_literals;
  const std::string info = (dir_ / "broker.json").string();
  testing::ChildProcess broker({testing::CmstreamBinary(), "broker", "--info-file", info},
                               (dir_ / "broker.log").string());
  broker.Start();
  ASSERT_TRUE(testing::WaitFor([&] { return std::filesystem::exists(info); }, 20s));
  nlohmann::json endpoints;
  for (int i = 0; i < 50 && !endpoints.is_object(); ++i) {
    std::ifstream in(info);
    endpoints = nlohmann::json::parse(in, nullptr, false);
  }
  ASSERT_TRUE(endpoints.is_object());
  const std::vector<std::string> at{"--brokers", endpoints["bootstrap"], "--broker-admin",
                                    endpoints["admin"]};
  auto apikey = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "apikey");
    if (args[1] != "token") args.insert(args.begin() + 2, at.begin(), at.end());
    return Run(args);
  };

  auto [token_code, token] = apikey({"token"});
  EXPECT_EQ(token_code, 0);
  EXPECT_THAT(token, ::testing::MatchesRegex("cmk_[0-9a-f]{16}_[A-Za-z0-9_-]{32}[[:space:]]*"));

  auto [admin_code, admin_out] = apikey({"create", "--admin", "--name", "first"});
  ASSERT_EQ(admin_code, 0) << admin_out;
  const auto admin = nlohmann::json::parse(admin_out);
  EXPECT_EQ(admin["scopes"], nlohmann::json::array({"admin"}));
  const std::string admin_key = admin["key"];
  auto [again_code, again_out] = apikey({"create", "--admin"});
  EXPECT_EQ(again_code, 1);
  EXPECT_THAT(again_out, HasSubstr("already has a working admin key"));

  auto [org_code, org_out] =
      apikey({"create", "--org", "acme", "--scopes", "usage:read,usage:write", "--user", "u-1"});
  ASSERT_EQ(org_code, 0) << org_out;
  const auto org = nlohmann::json::parse(org_out);
  const std::string org_key = org["key"];
  auto [bad_code, bad_out] = apikey({"create", "--org", "acme", "--scopes", "usage:all"});
  EXPECT_EQ(bad_code, 2);
  EXPECT_THAT(bad_out, HasSubstr("unknown scope"));

  auto [list_code, list_out] = apikey({"list"});
  EXPECT_EQ(list_code, 0);
  EXPECT_THAT(list_out, HasSubstr(org["keyId"].get<std::string>()));
  EXPECT_THAT(list_out, ::testing::Not(HasSubstr(org_key)));
  EXPECT_THAT(list_out, ::testing::Not(HasSubstr(admin_key)));
  EXPECT_THAT(list_out, ::testing::Not(HasSubstr("secretSha256")));

  auto [revoke_code, revoke_out] = apikey({"revoke", org["keyId"]});
  EXPECT_EQ(revoke_code, 0) << revoke_out;
  EXPECT_THAT(revoke_out, HasSubstr("revokedAt"));

  // An instance on that broker knows both keys: the admin key works, the revoked one does not.
  const int port = testing::FreePort();
  std::vector<std::string> run{testing::CmstreamBinary(),
                               "run",
                               "--app-id",
                               "cli-keys",
                               "--state-dir",
                               (dir_ / "state").string(),
                               "--http",
                               "127.0.0.1:" + std::to_string(port)};
  run.insert(run.begin() + 2, at.begin(), at.end());
  testing::ChildProcess instance(run, (dir_ / "run.log").string());
  instance.Start();
  httplib::Client c("127.0.0.1", port);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto r = c.Get("/ready");
        return r && r->status == 200;
      },
      60s))
      << instance.Log();
  auto listed = c.Get("/v1/admin/api-keys", {{"Authorization", "Bearer " + admin_key}});
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->status, 200) << listed->body;
  EXPECT_THAT(listed->body, HasSubstr("\"revoked\":true"));
  auto refused = c.Get("/v1/usage/orgs/acme/quota", {{"Authorization", "Bearer " + org_key}});
  EXPECT_EQ(refused->status, 401);
}

// On the embedded broker a partition keeps 5 MiB, so `run` takes usage events up to 4 KiB by
// default there (EmbeddedBrokerTest: 1,000 of them fit); a larger limit given on the command
// line is used, with a warning that says how few such events a partition holds.
TEST_F(CmstreamCliTest, RunOnTheEmbeddedBrokerTakesEventsThatAPartitionHoldsAThousandOf) {
  using namespace std::chrono_literals;
  auto event = [](size_t blob) {
    return nlohmann::json{{"eventId", "e-" + std::to_string(blob)},
                          {"organizationId", "acme"},
                          {"userId", "alice"},
                          {"eventType", "api.call"},
                          {"metadata", {{"blob", std::string(blob, 'x')}}}}
        .dump();
  };
  for (const std::string& limit : {std::string(), std::string("64KiB")}) {
    const int port = testing::FreePort();
    std::vector<std::string> run{testing::CmstreamBinary(),
                                 "run",
                                 "--embedded",
                                 "--state-dir",
                                 (dir_ / ("state" + limit)).string(),
                                 "--http",
                                 "127.0.0.1:" + std::to_string(port)};
    if (!limit.empty()) run.insert(run.end(), {"--max-event-bytes", limit});
    testing::ChildProcess instance(run, (dir_ / ("run" + limit + ".log")).string());
    instance.Start();
    auto c = testing::AdminClient(port);
    ASSERT_TRUE(testing::WaitFor(
        [&] {
          auto r = c->Get("/ready");
          return r && r->status == 200;
        },
        60s))
        << instance.Log();
    auto small = c->Post("/v1/usage/events", event(3000), "application/json");
    ASSERT_TRUE(small);
    EXPECT_EQ(small->status, 202) << small->body;
    auto large = c->Post("/v1/usage/events", event(5000), "application/json");
    ASSERT_TRUE(large);
    if (limit.empty()) {
      EXPECT_EQ(large->status, 400) << large->body;
      EXPECT_THAT(large->body, HasSubstr("event is larger than 4096 bytes"));
      EXPECT_THAT(instance.Log(), ::testing::Not(HasSubstr("embedded_broker_partition_bound")));
    } else {
      EXPECT_EQ(large->status, 202) << large->body;
      EXPECT_THAT(instance.Log(), HasSubstr("\"events_per_partition\":79"));
    }
  }
}

}  // namespace
}  // namespace cm
