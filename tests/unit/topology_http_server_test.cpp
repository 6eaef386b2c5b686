// topology::HttpServer over loopback: what every cmstream HTTP server answers on its own
// (/health, /metrics with every source, 404 and 405 with Allow) besides its routes, and what
// its connection layer refuses or survives (issue 14).
#include <gtest/gtest.h>
#include <httplib.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "raw_http.h"
#include "topology/query/http_server.h"

namespace cm::topology {
namespace {

using nlohmann::json;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Route("GET", "/v1/things/{id}", RouteAccess::Public(), [](const HttpRequest& req) {
      return HttpResponse::Json(200, {{"id", req.path_params.at("id")}});
    });
    server_.Route("DELETE", "/v1/things/{id}", RouteAccess::Public(), [](const HttpRequest&) {
      return HttpResponse::Error(404, "not_found", "no such thing");
    });
    // Like a route refusing a query value, quoting it in the message.
    server_.Route("GET", "/v1/echo", RouteAccess::Public(), [](const HttpRequest& req) {
      return HttpResponse::Error(400, "validation_error", "value '" + req.query.at("v") + "'");
    });
    server_.Route("POST", "/v1/things", RouteAccess::Public(),
                  [](const HttpRequest&) { return HttpResponse::Json(201, json::object()); });
    server_.AddMetrics([] { return std::string("cm_test_source 7\n"); });
    ASSERT_TRUE(server_.Start("127.0.0.1", 0).ok());
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_.port());
  }

  HttpServer server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpServerTest, AnswersHealthAndMetricsWithEverySource) {
  auto health = client_->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  ASSERT_TRUE(client_->Get("/v1/things/a"));
  auto metrics = client_->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find("cm_test_source 7\n"), std::string::npos) << metrics->body;
  EXPECT_NE(metrics->body.find(R"(route="GET /v1/things/{id}")"), std::string::npos);
}

// A wrong method once answered 404, as if the path did not exist (issue 14).
TEST_F(HttpServerTest, AWrongMethodIs405WithAllowAndAnUnknownPath404) {
  auto r = client_->Put("/v1/things/a", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "GET, DELETE");
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "method_not_allowed");
  r = client_->Get("/v1/things");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "POST");
  r = client_->Get("/v1/nothing");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "not_found");
  // A route's own 404 keeps its body.
  r = client_->Delete("/v1/things/a");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(json::parse(r->body)["error"]["message"], "no such thing");
}

using cm::testing::RawHttpConnection;
using namespace std::chrono_literals;

// A server with small limits and one worker per lane, so a test can fill them.
class HttpLimitsTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options) {
    server_ = std::make_unique<HttpServer>(options);
    server_->Route("GET", "/v1/things/{id}", RouteAccess::Public(), [](const HttpRequest& req) {
      return HttpResponse::Json(200, {{"id", req.path_params.at("id")}});
    });
    server_->Route("POST", "/v1/things", RouteAccess::Public(), [](const HttpRequest& req) {
      return HttpResponse::Json(201, {{"bytes", req.body.size()}});
    });
    server_->Route("POST", "/v1/slow", RouteAccess::Public(), [this](const HttpRequest&) {
      std::unique_lock<std::mutex> lock(mu_);
      ++waiting_;
      cv_.notify_all();
      cv_.wait(lock, [this] { return released_; });
      return HttpResponse::Json(200, json::object());
    });
    ASSERT_TRUE(server_->Start("127.0.0.1", 0).ok());
  }
  void TearDown() override {
    Release();
    server_.reset();
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  bool WaitForSlowHandlers(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 5s, [&] { return waiting_ >= n; });
  }
  int port() const { return server_->port(); }
  // A client that keeps its connection between requests, as a service's HTTP pool does.
  std::unique_ptr<httplib::Client> KeepAliveClient() const {
    auto client = std::make_unique<httplib::Client>("127.0.0.1", port());
    client->set_keep_alive(true);
    client->set_read_timeout(2, 0);
    return client;
  }
  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", port());
    client.set_read_timeout(2, 0);
    return client.Get(path.c_str());
  }

  std::unique_ptr<HttpServer> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool released_ = false;
};

TEST_F(HttpLimitsTest, RefusalsAreJson4xxAnsweredAtOnce) {
  HttpServerOptions options;
  options.limits.max_body_bytes = 100;
  Start(options);
  struct Case {
    std::string request;
    int status;
    std::string code;
  };
  std::string many_headers;
  for (int i = 0; i < 101; ++i) many_headers += "X-" + std::to_string(i) + ": v\r\n";
  std::vector<Case> cases = {
      {"POST /v1/things HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
       "Transfer-Encoding: chunked\r\n\r\n",
       400, "bad_request"},
      {"POST /v1/things HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: x\r\n\r\n",
       400, "bad_request"},
      {"POST /v1/things HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 101\r\n\r\n",
       413, "payload_too_large"},
      {"POST /v1/things HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi", 415,
       "unsupported_media_type"},
      {"GET /v1/things/a HTTP/1.1\r\n" + many_headers + "\r\n", 431, "too_many_headers"},
      {"GET /v1/things/a HTTP/1.1\r\nX-Big: " + std::string(40 << 10, 'x') + "\r\n\r\n", 431,
       "headers_too_large"},
      {"GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n", 414, "uri_too_long"},
  };
  for (const auto& c : cases) {
    RawHttpConnection conn(port());
    ASSERT_TRUE(conn.Send(c.request));
    // Answered well before the 10 s request timeout: the old server waited 5 s on a bad
    // Content-Length.
    auto start = std::chrono::steady_clock::now();
    std::string answer = conn.ReadUntilClosed(5s);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << c.code;
    ASSERT_EQ(RawHttpConnection::Status(answer), c.status) << c.code << ": " << answer;
    EXPECT_EQ(json::parse(RawHttpConnection::Body(answer))["error"]["code"], c.code);
  }
  auto metrics = Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find(R"(cmstream_http_refused_total{reason="too_many_headers"} 1)"),
            std::string::npos)
      << metrics->body;
}

TEST_F(HttpLimitsTest, ARequestThatNeverCompletesIs408AndFreesNothingElse) {
  HttpServerOptions options;
  options.request_timeout = 300ms;
  options.threads = 1;
  Start(options);
  RawHttpConnection partial_head(port());
  ASSERT_TRUE(partial_head.Send("GET /v1/things/a HTTP/1.1\r\nHost: x\r\n"));
  RawHttpConnection partial_body(port());
  ASSERT_TRUE(
      partial_body.Send("POST /v1/things HTTP/1.1\r\nContent-Type: "
                        "application/json\r\nContent-Length: 10\r\n\r\n{}"));
  // The one read worker is free: the partial requests wait in the reactor, not on it.
  auto r = Get("/v1/things/b");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  for (auto* conn : {&partial_head, &partial_body}) {
    std::string answer = conn->ReadUntilClosed(5s);
    ASSERT_EQ(RawHttpConnection::Status(answer), 408) << answer;
    EXPECT_EQ(json::parse(RawHttpConnection::Body(answer))["error"]["code"], "request_timeout");
  }
}

TEST_F(HttpLimitsTest, PipelinedAndSlowlyArrivingRequestsAreServedInOrder) {
  Start({});
  RawHttpConnection conn(port());
  ASSERT_TRUE(
      conn.Send("GET /v1/things/one HTTP/1.1\r\nHost: x\r\n\r\n"
                "POST /v1/things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 7\r\n\r\n{\"a\":1}GET /v1/things/t"));
  ASSERT_TRUE(conn.Send("wo HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string answers = conn.ReadResponses(3, 5s);
  size_t one = answers.find(R"({"id":"one"})");
  size_t post = answers.find(R"({"bytes":7})");
  size_t two = answers.find(R"({"id":"two"})");
  ASSERT_NE(one, std::string::npos) << answers;
  ASSERT_NE(post, std::string::npos) << answers;
  ASSERT_NE(two, std::string::npos) << answers;
  EXPECT_LT(one, post);
  EXPECT_LT(post, two);
}

TEST_F(HttpLimitsTest, AFullWriteLaneAnswers503WhileReadsAndHealthGoOn) {
  HttpServerOptions options;
  options.threads = 1;
  options.max_queued = 1;
  Start(options);
  const std::string slow =
      "POST /v1/slow HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
  RawHttpConnection busy(port()), queued(port()), refused(port());
  ASSERT_TRUE(busy.Send(slow));
  ASSERT_TRUE(WaitForSlowHandlers(1));
  ASSERT_TRUE(queued.Send(slow));
  // The queued request is in the lane's queue once the third one is refused; retry until the
  // reactor has taken the second one in.
  std::string answer;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    RawHttpConnection probe(port());
    ASSERT_TRUE(probe.Send(slow));
    answer = probe.ReadResponses(1, 200ms);
    if (RawHttpConnection::Status(answer) == 503) break;
  }
  ASSERT_EQ(RawHttpConnection::Status(answer), 503) << answer;
  EXPECT_NE(answer.find("Retry-After: 1"), std::string::npos);
  EXPECT_EQ(json::parse(RawHttpConnection::Body(answer))["error"]["code"], "overloaded");
  auto health = Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto read = Get("/v1/things/c");
  ASSERT_TRUE(read);
  EXPECT_EQ(read->status, 200);
  Release();
  EXPECT_EQ(RawHttpConnection::Status(busy.ReadResponses(1, 5s)), 200);
  EXPECT_EQ(RawHttpConnection::Status(queued.ReadResponses(1, 5s)), 200);
}

TEST_F(HttpLimitsTest, AnAddressOverItsRateIs429WithRetryAfterButHealthIsNotLimited) {
  HttpServerOptions options;
  options.rate_limit = 0.5;  // a token every 2 s: the test outruns it
  options.rate_burst = 3;
  Start(options);
  for (int i = 0; i < 3; ++i) {
    auto r = Get("/v1/things/a");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << i;
  }
  auto limited = Get("/v1/things/a");
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status, 429);
  EXPECT_EQ(json::parse(limited->body)["error"]["code"], "rate_limited");
  EXPECT_GE(std::stoi(limited->get_header_value("Retry-After")), 1);
  for (int i = 0; i < 5; ++i) {
    auto health = Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
  }
}

// After an answer a worker waits (the linger) for the connection's next request and serves
// it itself; what it cannot serve (another lane, a refusal) goes back through the reactor.
TEST_F(HttpLimitsTest, AKeepAliveConnectionIsServedInOrderAcrossLanes) {
  HttpServerOptions options;
  options.keep_alive_linger = 5s;  // far longer than the test's requests take to follow
  Start(options);
  auto client = KeepAliveClient();
  for (int round = 0; round < 3; ++round) {
    const std::string id = "k" + std::to_string(round);
    auto get = client->Get(("/v1/things/" + id).c_str());
    ASSERT_TRUE(get) << round;
    EXPECT_EQ(json::parse(get->body)["id"], id);
    auto again = client->Get(("/v1/things/" + id + "x").c_str());
    ASSERT_TRUE(again) << round;
    EXPECT_EQ(json::parse(again->body)["id"], id + "x");
    auto post = client->Post("/v1/things", "{\"a\":1}", "application/json");
    ASSERT_TRUE(post) << round;
    EXPECT_EQ(post->status, 201);
    auto health = client->Get("/health");
    ASSERT_TRUE(health) << round;
    EXPECT_EQ(health->status, 200);
    auto missing = client->Get("/v1/nothing");
    ASSERT_TRUE(missing) << round;
    EXPECT_EQ(missing->status, 404);
  }
}

// A worker never lingers as its lane's last idle one: with one read worker and a linger far
// longer than the client waits, a second client is still answered at once.
TEST_F(HttpLimitsTest, ALingeringWorkerNeverLeavesItsLaneWithoutAnIdleWorker) {
  HttpServerOptions options;
  options.threads = 1;
  options.keep_alive_linger = 30s;
  Start(options);
  auto first = KeepAliveClient();
  ASSERT_TRUE(first->Get("/v1/things/a"));  // its connection stays open, silent
  for (int i = 0; i < 3; ++i) {
    auto r = Get("/v1/things/b");  // a new connection each time, read timeout 2 s
    ASSERT_TRUE(r) << i;
    EXPECT_EQ(r->status, 200);
  }
  auto again = first->Get("/v1/things/c");
  ASSERT_TRUE(again);
  EXPECT_EQ(json::parse(again->body)["id"], "c");
}

// The rate limit holds for requests a lingering worker takes off a keep-alive connection.
TEST_F(HttpLimitsTest, AKeepAliveConnectionOverItsRateIs429) {
  HttpServerOptions options;
  options.rate_limit = 0.5;
  options.rate_burst = 3;
  options.keep_alive_linger = 5s;
  Start(options);
  auto client = KeepAliveClient();
  for (int i = 0; i < 3; ++i) {
    auto r = client->Get("/v1/things/a");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << i;
  }
  auto limited = client->Get("/v1/things/a");
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status, 429);
  EXPECT_EQ(json::parse(limited->body)["error"]["code"], "rate_limited");
}

TEST_F(HttpLimitsTest, ConnectionsOverTheLimitAre503) {
  HttpServerOptions options;
  options.max_connections = 2;
  Start(options);
  RawHttpConnection a(port()), b(port());
  ASSERT_TRUE(a.Send("GET /v1/things/a HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(b.Send("GET /v1/things/b HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_EQ(RawHttpConnection::Status(a.ReadResponses(1, 5s)), 200);
  ASSERT_EQ(RawHttpConnection::Status(b.ReadResponses(1, 5s)), 200);
  RawHttpConnection c(port());
  std::string answer = c.ReadUntilClosed(5s);
  EXPECT_EQ(RawHttpConnection::Status(answer), 503) << answer;
}

// A 400 quoting a query value that is not UTF-8 (granularity=%FF) threw in json::dump and was
// answered 500 (found by fuzz_http_route).
TEST_F(HttpServerTest, ARefusalQuotingBytesThatAreNotUtf8IsStillA400) {
  auto r = client_->Get("/v1/echo?v=a%FFb");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["error"]["message"],
            "value 'a\xEF\xBF\xBD"
            "b'");
}

// Responses are buffered and sent whole; what the server writes before reading more (the
// interim 100 Continue a client waits for before sending its body) must still go out first.
TEST_F(HttpServerTest, A100ContinueIsSentBeforeTheBodyIsRead) {
  RawHttpConnection c(server_.port());
  ASSERT_TRUE(
      c.Send("POST /v1/things HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: 2\r\nExpect: 100-continue\r\n\r\n"));
  const std::string interim = c.ReadUntil("\r\n\r\n", 5s);
  ASSERT_EQ(RawHttpConnection::Status(interim), 100) << interim;
  ASSERT_TRUE(c.Send("{}"));
  const std::string answer = c.ReadResponses(1, 5s);
  EXPECT_EQ(RawHttpConnection::Status(answer), 201) << answer;
}

}  // namespace
}  // namespace cm::topology
