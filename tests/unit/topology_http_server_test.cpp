// topology::HttpServer over loopback: what every cmstream HTTP server answers on its own
// (/health, /metrics with every source, 404 and 405 with Allow) besides its routes.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "topology/query/http_server.h"

namespace cm::topology {
namespace {

using nlohmann::json;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.Route("GET", "/v1/things/{id}", [](const HttpRequest& req) {
      return HttpResponse::Json(200, {{"id", req.path_params.at("id")}});
    });
    server_.Route("DELETE", "/v1/things/{id}", [](const HttpRequest&) {
      return HttpResponse::Error(404, "not_found", "no such thing");
    });
    // Like a route refusing a query value, quoting it in the message.
    server_.Route("GET", "/v1/echo", [](const HttpRequest& req) {
      return HttpResponse::Error(400, "validation_error", "value '" + req.query.at("v") + "'");
    });
    server_.Route("POST", "/v1/things",
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

// A 400 quoting a query value that is not UTF-8 (granularity=%FF) threw in json::dump and was
// answered 500 (found by fuzz_http_route).
TEST_F(HttpServerTest, ARefusalQuotingBytesThatAreNotUtf8IsStillA400) {
  auto r = client_->Get("/v1/echo?v=a%FFb");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["error"]["message"], "value 'a\xEF\xBF\xBD" "b'");
}

}  // namespace
}  // namespace cm::topology
