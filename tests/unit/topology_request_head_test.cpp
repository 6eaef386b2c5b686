// topology::ParseRequestHead: what the connection layer refuses before cpp-httplib or a
// handler sees a request (issue 14: smuggling shapes, unbounded headers, non-JSON bodies).
#include <gtest/gtest.h>

#include <string>

#include "topology/query/request_head.h"

namespace cm::topology {
namespace {

using Kind = HeadParse::Kind;

HeadParse Parse(const std::string& text, RequestHeadLimits limits = {}) {
  return ParseRequestHead(text, limits);
}

TEST(RequestHeadTest, ACompleteHeadGivesMethodPathAndBodyFraming) {
  auto p = Parse(
      "POST /v1/usage/events?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
      "Content-Length: 2\r\n\r\n{}");
  ASSERT_EQ(p.kind, Kind::kComplete) << p.refusal.message;
  EXPECT_EQ(p.head.method, "POST");
  EXPECT_EQ(p.head.path, "/v1/usage/events");
  EXPECT_EQ(p.head.content_length, 2u);
  EXPECT_FALSE(p.head.chunked);
  EXPECT_EQ(std::string("POST /v1/usage/events?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: "
                        "application/json\r\nContent-Length: 2\r\n\r\n")
                .size(),
            p.head.head_bytes);
}

TEST(RequestHeadTest, WaitsForTheBlankLineAndAcceptsBareLineFeeds) {
  EXPECT_EQ(Parse("GET /health HTTP/1.1\r\nHost: a\r\n").kind, Kind::kIncomplete);
  EXPECT_EQ(Parse("GET /hea").kind, Kind::kIncomplete);
  auto p = Parse("GET /health HTTP/1.0\nHost: a\n\n");
  ASSERT_EQ(p.kind, Kind::kComplete);
  EXPECT_EQ(p.head.path, "/health");
}

TEST(RequestHeadTest, ALongRequestLineIs414EvenBeforeItEnds) {
  RequestHeadLimits limits;
  limits.max_uri_bytes = 100;
  auto p = Parse("GET /" + std::string(200, 'a'), limits);
  ASSERT_EQ(p.kind, Kind::kRefused);
  EXPECT_EQ(p.refusal.status, 414);
  p = Parse("GET /" + std::string(200, 'a') + " HTTP/1.1\r\n\r\n", limits);
  EXPECT_EQ(p.refusal.status, 414);
}

TEST(RequestHeadTest, TooManyOrTooLargeHeadersAre431) {
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  auto p = Parse(many + "\r\n");
  ASSERT_EQ(p.kind, Kind::kRefused);
  EXPECT_EQ(p.refusal.status, 431);
  EXPECT_EQ(p.refusal.code, "too_many_headers");
  // Refused while the headers are still arriving: the server never buffers past the limit.
  std::string large = "GET / HTTP/1.1\r\nX-Big: " + std::string(40 << 10, 'x');
  p = Parse(large);
  ASSERT_EQ(p.kind, Kind::kRefused);
  EXPECT_EQ(p.refusal.status, 431);
  EXPECT_EQ(p.refusal.code, "headers_too_large");
}

TEST(RequestHeadTest, ABodyFramedTwoWaysIsRefused) {
  auto p = Parse(
      "POST /v1/x HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 5\r\n"
      "Transfer-Encoding: chunked\r\n\r\n");
  ASSERT_EQ(p.kind, Kind::kRefused);
  EXPECT_EQ(p.refusal.status, 400);
  EXPECT_NE(p.refusal.message.find("both Content-Length and Transfer-Encoding"), std::string::npos);
  p = Parse("POST /v1/x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
  EXPECT_EQ(p.refusal.status, 400);
  p = Parse("POST /v1/x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
  EXPECT_EQ(p.refusal.status, 400);
}

TEST(RequestHeadTest, AContentLengthThatIsNotADecimalNumberIs400) {
  for (const char* bad : {"abc", "-1", "0x10", "1e3", "", "+5", "99999999999999999999999"}) {
    auto p = Parse(std::string("POST /v1/x HTTP/1.1\r\nContent-Type: application/json\r\n") +
                   "Content-Length: " + bad + "\r\n\r\n");
    ASSERT_EQ(p.kind, Kind::kRefused) << bad;
    EXPECT_EQ(p.refusal.status, 400) << bad;
  }
}

TEST(RequestHeadTest, ABodyOverTheLimitIs413FromItsContentLength) {
  RequestHeadLimits limits;
  limits.max_body_bytes = 1000;
  auto p =
      Parse("PUT /v1/x HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1001\r\n\r\n",
            limits);
  ASSERT_EQ(p.kind, Kind::kRefused);
  EXPECT_EQ(p.refusal.status, 413);
}

TEST(RequestHeadTest, ABodyMustBeJson) {
  auto p = Parse("POST /v1/x HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n");
  ASSERT_EQ(p.kind, Kind::kRefused);
  EXPECT_EQ(p.refusal.status, 415);
  p = Parse("POST /v1/x HTTP/1.1\r\nContent-Length: 2\r\n\r\n");
  EXPECT_EQ(p.refusal.status, 415);
  for (const char* type : {"application/json", "Application/JSON; charset=utf-8",
                           "application/cloudevents+json", "application/cloudevents-batch+json"}) {
    p = Parse(std::string("POST /v1/x HTTP/1.1\r\nContent-Type: ") + type +
              "\r\nContent-Length: 2\r\n\r\n");
    EXPECT_EQ(p.kind, Kind::kComplete) << type;
  }
  // No body, no type needed.
  EXPECT_EQ(Parse("POST /v1/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n").kind, Kind::kComplete);
  EXPECT_EQ(Parse("DELETE /v1/x HTTP/1.1\r\n\r\n").kind, Kind::kComplete);
}

TEST(RequestHeadTest, AMalformedRequestLineOrHeaderIs400) {
  for (const char* bad :
       {"GET\r\n\r\n", "GET /x\r\n\r\n", "GET x HTTP/1.1\r\n\r\n", "GET /x HTTP/2.0\r\n\r\n",
        "G(T /x HTTP/1.1\r\n\r\n", "GET /x HTTP/1.1\r\nno colon\r\n\r\n"}) {
    auto p = Parse(bad);
    ASSERT_EQ(p.kind, Kind::kRefused) << bad;
    EXPECT_EQ(p.refusal.status, 400) << bad;
  }
}

}  // namespace
}  // namespace cm::topology
