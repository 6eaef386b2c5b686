// Interactive queries across instances: any instance answers for any key, locally or by
// forwarding to the owner; while a key has no running owner the answer is 503 + Retry-After.
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "child_process.h"
#include "kafka_clients.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::WaitFor;

using testing::CmstreamBinary;

struct Answer {
  int status = 0;
  nlohmann::json body;
  std::string retry_after;
};

Answer GetCount(int port, const std::string& key) {
  httplib::Client c("127.0.0.1", port);
  c.set_bearer_token_auth(cm::testing::kTestAdminKey);
  c.set_connection_timeout(2);
  auto r = c.Get("/v1/counts/" + key);
  if (!r) return {};
  return {r->status, nlohmann::json::parse(r->body, nullptr, false),
          r->get_header_value("Retry-After")};
}

bool Ready(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_bearer_token_auth(cm::testing::kTestAdminKey);
  c.set_connection_timeout(1);
  auto r = c.Get("/ready");
  return r && r->status == 200;
}

TEST(QueryRoutingTest, EveryInstanceAnswersForEveryKeyAndSaysWhenNoOneCan) {
  auto dir =
      std::filesystem::temp_directory_path() / ("cm-e2e-routing-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string info = (dir / "broker.json").string();
  ChildProcess broker({CmstreamBinary(), "broker", "--info-file", info, "--topic", "count-input:4"},
                      (dir / "broker.log").string());
  broker.Start();
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(info); }, 20s));
  nlohmann::json endpoints;
  std::ifstream(info) >> endpoints;
  const std::string bootstrap = endpoints["bootstrap"];

  auto start = [&](const std::string& id, int port) {
    auto p = std::make_unique<ChildProcess>(
        std::vector<std::string>{
            CmstreamBinary(), "run", "--brokers", bootstrap, "--broker-admin", endpoints["admin"],
            "--topology", "counting", "--app-id", "e2e-routing", "--instance-id", id, "--state-dir",
            (dir / id).string(), "--http", "127.0.0.1:" + std::to_string(port)},
        (dir / (id + ".log")).string());
    p->Start();
    return p;
  };
  int port_a = testing::FreePort(), port_b = testing::FreePort();
  auto a = start("a", port_a);
  auto b = start("b", port_b);
  ASSERT_TRUE(WaitFor([&] { return Ready(port_a) && Ready(port_b); }, 60s)) << a->Log() << b->Log();

  auto producer = testing::NewProducer(bootstrap);
  constexpr int kKeys = 100;
  for (int i = 0; i < 2000; ++i)
    testing::Produce(producer.get(), "count-input", "key-" + std::to_string(i % kKeys), "x");
  rd_kafka_flush(producer.get(), 10000);

  // Both instances answer for all keys with the same, exact counts.
  auto all_exact_from = [&](int port) {
    for (int k = 0; k < kKeys; ++k) {
      Answer ans = GetCount(port, "key-" + std::to_string(k));
      if (ans.status != 200 || ans.body["count"] != 20) return false;
    }
    return true;
  };
  EXPECT_TRUE(WaitFor([&] { return all_exact_from(port_a) && all_exact_from(port_b); }, 60s));
  Answer missing = GetCount(port_a, "never-seen");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body["error"]["code"], "not_found");

  // b dies: its keys have no running owner until a takes them over after the session timeout.
  b->Kill(SIGKILL);
  bool saw_unavailable = false;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int k = 0; k < kKeys; ++k) {
          Answer ans = GetCount(port_a, "key-" + std::to_string(k));
          if (ans.status == 503) {
            saw_unavailable = true;
            EXPECT_EQ(ans.retry_after, "1");
            EXPECT_EQ(ans.body["error"]["code"], "unavailable");
            return false;
          }
          if (ans.status != 200 || ans.body["count"] != 20) return false;
        }
        return true;
      },
      90s, 100ms))
      << a->Log();
  EXPECT_TRUE(saw_unavailable) << "queries for the dead instance's keys never answered 503";
  a->Kill(SIGTERM);
  broker.Kill(SIGTERM);
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cm
