// One `cmstream run --embedded` under the load that starved it (issue 14, case 4): 500
// connections that send their headers slowly and 200 clients sending plan commands. /health
// and /ready must keep answering; before the connection reactor, 8 slow connections were
// enough to stop /health. The figures (p99 against an idle instance) are ops/bench/overload's.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/resource.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "child_process.h"
#include "raw_http.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using testing::RawHttpConnection;

TEST(HttpOverloadTest, HealthAndReadyAnswerWhileSlowAndBusyClientsHoldTheServer) {
  // The test holds 700 sockets itself.
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  auto dir = testing::FreshTestDirectory("cm-http-overload");
  const int port = testing::FreePort();
  testing::ChildProcess cmstream(
      {testing::CmstreamBinary(), "run", "--embedded", "--state-dir", (dir / "state").string(),
       "--http", "127.0.0.1:" + std::to_string(port),
       // The slow clients must stay connected for the whole test, not be cut off with 408.
       "--http-request-timeout", "300s"},
      (dir / "cmstream.log").string());
  cmstream.Start();
  httplib::Client probe("127.0.0.1", port);
  probe.set_bearer_token_auth(cm::testing::kTestAdminKey);
  probe.set_connection_timeout(1, 0);
  probe.set_read_timeout(1, 0);
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        auto r = probe.Get("/ready");
        return r && r->status == 200;
      },
      60s))
      << cmstream.Log();

  // 500 clients that sent part of their headers and go quiet.
  std::vector<std::unique_ptr<RawHttpConnection>> slow;
  for (int i = 0; i < 500; ++i) {
    slow.push_back(std::make_unique<RawHttpConnection>(port));
    ASSERT_TRUE(slow.back()->Send(
        "GET /v1/usage/orgs/org-1/quota/check?metricType=api_calls&amount=1 HTTP/1.1\r\n"
        "Host: x\r\nAuthorization: Bearer " +
        std::string(cm::testing::kTestAdminKey) + "\r\nX-Slow: "));
  }
  // 200 clients sending commands (each one a Kafka round trip) as fast as they are answered.
  std::atomic<bool> stop{false};
  std::atomic<int> accepted{0}, failed{0};
  std::vector<std::thread> senders;
  for (int i = 0; i < 200; ++i) {
    senders.emplace_back([&, i] {
      httplib::Client client("127.0.0.1", port);
      client.set_bearer_token_auth(cm::testing::kTestAdminKey);
      client.set_read_timeout(30, 0);
      std::string body = nlohmann::json{{"plan", i % 2 ? "pro" : "free"}}.dump();
      while (!stop.load()) {
        auto r = client.Put("/v1/usage/orgs/org-" + std::to_string(i) + "/plan", body,
                            "application/json");
        (r && r->status < 300 ? accepted : failed).fetch_add(1);
      }
    });
  }
  ASSERT_TRUE(testing::WaitFor([&] { return accepted.load() >= 200; }, 60s))
      << "accepted " << accepted.load() << ", failed " << failed.load();

  // Each probe has a 1 s deadline; the old server took 11.7 s for /health under this load.
  for (int i = 0; i < 50; ++i) {
    for (const char* path : {"/health", "/ready"}) {
      auto r = probe.Get(path);
      ASSERT_TRUE(r) << path << " did not answer within 1 s (probe " << i << ")";
      EXPECT_EQ(r->status, 200) << path;
    }
  }
  // A quota check, on the read lane, is not queued behind the commands either.
  auto quota = probe.Get("/v1/usage/orgs/org-1/quota/check?metricType=api_calls&amount=1");
  ASSERT_TRUE(quota);
  EXPECT_EQ(quota->status, 200) << quota->body;

  stop = true;
  for (auto& t : senders) t.join();
  EXPECT_EQ(failed.load(), 0) << "commands refused or failed under load";
  // The slow clients were held, not dropped: one that finishes its request is answered.
  ASSERT_TRUE(slow.front()->Send("1\r\n\r\n"));
  EXPECT_EQ(RawHttpConnection::Status(slow.front()->ReadResponses(1, 5s)), 200);
}

}  // namespace
}  // namespace cm
