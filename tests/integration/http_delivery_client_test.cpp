// bridges/http's DeliveryClient against a real HTTPS receiver (tests/support/webhook_sink.h,
// with a certificate made for the test): statuses come back as they are (2xx, 5xx, 410, 429
// with Retry-After, 3xx not followed); a silent, resetting, dripping or flooding endpoint ends
// as a timeout, a connection failure, a timeout at the deadline and a capped success; an
// untrusted certificate is a TLS failure; http:// needs allow_http; loopback addresses, literal
// or behind a name, are refused unless allow-listed; a closed port is a connection failure.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "bridges/http/delivery_client.h"
#include "webhook_sink.h"

namespace cm::http {
namespace {

using namespace std::chrono_literals;
using Reply = cm::testing::WebhookSink::Reply;
using Sink = cm::testing::WebhookSink;

// A client that trusts the sink's certificate and may reach loopback.
DeliveryClientOptions SinkOptions(const Sink& sink) {
  DeliveryClientOptions options;
  auto policy = AddressPolicy::FromAllowList("127.0.0.0/8,::1/128");
  EXPECT_TRUE(policy.ok());
  options.policy = *policy;
  options.ca_file = sink.ca_file();
  return options;
}

const std::vector<std::pair<std::string, std::string>> kHeaders = {
    {"Content-Type", "application/json"},
    {"webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"},
    {"webhook-timestamp", "1700000000"},
    {"webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="},
    {"X-Custom", "a value, with commas; and: colons"},
};
const std::string kBody =
    R"({"type":"usage.threshold","data":{"organizationId":"org_1","pct":80}})";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string HttpDate(int64_t unix_seconds) {
  std::time_t t = unix_seconds;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[64];
  std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return text;
}

// A port nothing listens on (bound, then released).
int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(HttpDeliveryClientTest, A200IsASuccessAndTheRequestArrivesIntact) {
  Sink sink;
  sink.SetResponder([](const Sink::Request&) { return Reply::Status(200, "thanks"); });
  DeliveryClient client(SinkOptions(sink));
  DeliveryOutcome outcome =
      client.Post(sink.url("/hooks/a?tenant=1#fragment"), kHeaders, kBody, 5000);
  EXPECT_EQ(outcome.failure, DeliveryFailure::kNone) << outcome.error;
  EXPECT_EQ(outcome.status, 200);
  EXPECT_TRUE(outcome.error.empty());
  EXPECT_FALSE(outcome.retry_after_ms);
  EXPECT_GE(outcome.response_time_ms, 0);

  std::vector<Sink::Request> got = sink.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].path, "/hooks/a");
  EXPECT_EQ(got[0].target, "/hooks/a?tenant=1");
  EXPECT_EQ(got[0].body, kBody);
  for (const auto& [name, value] : kHeaders) {
    EXPECT_EQ(got[0].header(name), value) << name;
    EXPECT_EQ(got[0].header_count(name), 1u) << name;
  }
  EXPECT_EQ(got[0].header("User-Agent"), "cmstream-webhooks/1");
  EXPECT_EQ(got[0].header("Host"), "127.0.0.1:" + std::to_string(sink.port()));
  EXPECT_EQ(got[0].header("Content-Length"), std::to_string(kBody.size()));
}

TEST(HttpDeliveryClientTest, ConnectionsAreKeptAliveAndReusedUntilTheServerClosesThem) {
  Sink sink;
  DeliveryClient client(SinkOptions(sink));
  // (httplib's server closes a connection after its 5th request.)
  for (int i = 0; i < 3; ++i) {
    DeliveryOutcome outcome = client.Post(sink.url("/h"), kHeaders, kBody, 5000);
    ASSERT_EQ(outcome.status, 200) << outcome.error;
  }
  std::vector<Sink::Request> got = sink.requests();
  ASSERT_EQ(got.size(), 3u);
  for (const auto& r : got) EXPECT_EQ(r.remote_port, got[0].remote_port) << "one TLS connection";
  EXPECT_EQ(client.counters().connections_opened, 1u);
  EXPECT_EQ(client.counters().connections_reused, 2u);
  EXPECT_EQ(client.counters().idle_connections, 1u);

  // A server that closes the connection after answering: the next post opens a new one.
  Sink::Reply closing = Reply::Status(200);
  closing.headers = {{"Connection", "close"}};
  sink.Script({closing});
  ASSERT_EQ(client.Post(sink.url("/h"), kHeaders, kBody, 5000).status, 200);
  DeliveryOutcome after = client.Post(sink.url("/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(after.status, 200) << after.error;
  got = sink.requests();
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[3].remote_port, got[0].remote_port);
  EXPECT_NE(got[4].remote_port, got[0].remote_port);

  // Without idle connections allowed, every post has a connection of its own.
  DeliveryClientOptions options = SinkOptions(sink);
  options.max_idle_connections = 0;
  DeliveryClient single(options);
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(single.Post(sink.url("/h"), kHeaders, kBody, 5000).status, 200);
  got = sink.requests();
  ASSERT_EQ(got.size(), 7u);
  EXPECT_NE(got[5].remote_port, got[6].remote_port);
  EXPECT_EQ(got[6].header("Connection"), "close");
}

TEST(HttpDeliveryClientTest, ServerErrorsAndGoneAreStatusesNotFailures) {
  Sink sink;
  sink.Script({Reply::Status(500, "boom"), Reply::Status(410), Reply::Status(503)});
  DeliveryClient client(SinkOptions(sink));
  for (int expected : {500, 410, 503}) {
    DeliveryOutcome outcome = client.Post(sink.url("/h"), kHeaders, kBody, 5000);
    EXPECT_EQ(outcome.failure, DeliveryFailure::kNone) << outcome.error;
    EXPECT_EQ(outcome.status, expected);
    EXPECT_FALSE(outcome.retry_after_ms) << expected;  // none was sent
    EXPECT_TRUE(outcome.error.empty());
  }
}

TEST(HttpDeliveryClientTest, RetryAfterIsReadAsSecondsOrAnHttpDate) {
  Sink sink;
  int64_t in_thirty_seconds = NowMs() / 1000 + 30;
  sink.Script({Reply::RetryAfter(429, "7"), Reply::RetryAfter(503, HttpDate(in_thirty_seconds)),
               Reply::RetryAfter(429, "soon"), Reply::RetryAfter(500, "7")});
  DeliveryClient client(SinkOptions(sink));

  DeliveryOutcome seconds = client.Post(sink.url("/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(seconds.status, 429);
  EXPECT_EQ(seconds.retry_after_ms, 7000);

  DeliveryOutcome date = client.Post(sink.url("/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(date.status, 503);
  ASSERT_TRUE(date.retry_after_ms);
  EXPECT_GT(*date.retry_after_ms, 20'000);
  EXPECT_LE(*date.retry_after_ms, 30'000);

  DeliveryOutcome garbage = client.Post(sink.url("/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(garbage.status, 429);
  EXPECT_FALSE(garbage.retry_after_ms);

  DeliveryOutcome not_throttled = client.Post(sink.url("/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(not_throttled.status, 500);
  EXPECT_FALSE(not_throttled.retry_after_ms);
}

TEST(HttpDeliveryClientTest, RetryAfterFormsParse) {
  const int64_t now = 784111777000;  // Sun, 06 Nov 1994 08:49:37 GMT
  EXPECT_EQ(DeliveryClient::ParseRetryAfter("120", now), 120'000);
  EXPECT_EQ(DeliveryClient::ParseRetryAfter(" 0 ", now), 0);
  EXPECT_EQ(DeliveryClient::ParseRetryAfter("Sun, 06 Nov 1994 08:49:47 GMT", now), 10'000);
  EXPECT_EQ(DeliveryClient::ParseRetryAfter("Sunday, 06-Nov-94 08:50:37 GMT", now), 60'000);
  EXPECT_EQ(DeliveryClient::ParseRetryAfter("Sun Nov  6 08:49:38 1994", now), 1'000);
  EXPECT_EQ(DeliveryClient::ParseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now), 0);  // past
  EXPECT_EQ(DeliveryClient::ParseRetryAfter("99999999999999999999999", now),
            std::numeric_limits<int64_t>::max() / 1000 * 1000);
  for (std::string_view bad : {"", "-5", "1.5", "tomorrow", "Sun, 06 Nov 1994 08:49:47 GMT x"})
    EXPECT_EQ(DeliveryClient::ParseRetryAfter(bad, now), std::nullopt) << bad;
}

TEST(HttpDeliveryClientTest, ARedirectIsReturnedNotFollowed) {
  Sink sink;
  sink.Script({Reply::Redirect(sink.url("/elsewhere"), 302), Reply::Redirect("/moved", 307)});
  DeliveryClient client(SinkOptions(sink));
  for (int expected : {302, 307}) {
    DeliveryOutcome outcome = client.Post(sink.url("/h"), kHeaders, kBody, 5000);
    EXPECT_EQ(outcome.failure, DeliveryFailure::kNone) << outcome.error;
    EXPECT_EQ(outcome.status, expected);
  }
  std::vector<Sink::Request> got = sink.requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].path, "/h");
  EXPECT_EQ(got[1].path, "/h");
}

TEST(HttpDeliveryClientTest, AServerSlowerThanTheTimeoutIsATimeoutAtTheTimeout) {
  Sink sink;
  sink.SetResponder([](const Sink::Request&) { return Reply::Slow(10s); });
  DeliveryClient client(SinkOptions(sink));
  auto start = std::chrono::steady_clock::now();
  DeliveryOutcome outcome = client.Post(sink.url("/h"), kHeaders, kBody, 700);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(outcome.failure, DeliveryFailure::kTimeout) << outcome.error;
  EXPECT_EQ(outcome.status, 0);
  EXPECT_NE(outcome.error.find("700 ms"), std::string::npos) << outcome.error;
  EXPECT_GE(took, 650ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(sink.request_count(), 1u);
}

TEST(HttpDeliveryClientTest, AConnectionClosedWithoutAnAnswerIsAConnectionFailure) {
  Sink sink;
  sink.SetResponder([](const Sink::Request&) { return Reply::Reset(); });
  DeliveryClient client(SinkOptions(sink));
  DeliveryOutcome outcome = client.Post(sink.url("/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(outcome.failure, DeliveryFailure::kConnection) << outcome.error;
  EXPECT_EQ(outcome.status, 0);
  EXPECT_FALSE(outcome.error.empty());
  EXPECT_EQ(outcome.error.find('\n'), std::string::npos);
}

TEST(HttpDeliveryClientTest, AResetOverPlainHttpIsAConnectionFailureToo) {
  Sink sink(Sink::Mode::kHttp);
  sink.SetResponder([](const Sink::Request&) { return Reply::Reset(); });
  DeliveryClientOptions options = SinkOptions(sink);
  options.allow_http = true;
  DeliveryOutcome outcome = DeliveryClient(options).Post(sink.url("/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(outcome.failure, DeliveryFailure::kConnection) << outcome.error;
}

TEST(HttpDeliveryClientTest, ASlowDripBodyIsCutAtTheDeadline) {
  Sink sink;
  // 1000 bytes at one per 50 ms would take 50 s.
  sink.SetResponder([](const Sink::Request&) { return Reply::SlowDrip(1000, 50ms); });
  DeliveryClient client(SinkOptions(sink));
  auto start = std::chrono::steady_clock::now();
  DeliveryOutcome outcome = client.Post(sink.url("/h"), kHeaders, kBody, 800);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(outcome.failure, DeliveryFailure::kTimeout) << outcome.error;
  EXPECT_EQ(outcome.status, 0);
  EXPECT_NE(outcome.error.find("status 200"), std::string::npos) << outcome.error;
  EXPECT_GE(took, 750ms);
  EXPECT_LT(took, 3s);
}

TEST(HttpDeliveryClientTest, AHugeBodyIsCutAtTheCapWithoutAnError) {
  Sink sink;
  sink.SetResponder([](const Sink::Request&) { return Reply::Huge(10 * 1024 * 1024); });
  DeliveryClient client(SinkOptions(sink));
  DeliveryOutcome outcome = client.Post(sink.url("/h"), kHeaders, kBody, 10'000);
  EXPECT_EQ(outcome.failure, DeliveryFailure::kNone) << outcome.error;
  EXPECT_EQ(outcome.status, 200);
  EXPECT_TRUE(outcome.error.empty());
  // The sender is not held for 10 MB: the cap (64 KiB) ends the exchange.
  EXPECT_LT(outcome.response_time_ms, 5000);
}

TEST(HttpDeliveryClientTest, AnUntrustedCertificateIsATlsFailure) {
  Sink sink;
  DeliveryClientOptions options = SinkOptions(sink);
  options.ca_file.clear();  // the system's CAs only
  DeliveryOutcome outcome = DeliveryClient(options).Post(sink.url("/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(outcome.failure, DeliveryFailure::kTls) << outcome.error;
  EXPECT_NE(outcome.error.find("certificate"), std::string::npos) << outcome.error;
  EXPECT_EQ(sink.request_count(), 0u);
}

TEST(HttpDeliveryClientTest, TlsToAPlainServerIsATlsFailure) {
  Sink sink(Sink::Mode::kHttp);
  DeliveryClientOptions options = SinkOptions(sink);
  DeliveryOutcome outcome = DeliveryClient(options).Post(
      sink.url_for("127.0.0.1", "/h").replace(0, 4, "https"), kHeaders, kBody, 5000);
  EXPECT_EQ(outcome.failure, DeliveryFailure::kTls) << outcome.error;
}

TEST(HttpDeliveryClientTest, PlainHttpNeedsAllowHttp) {
  Sink sink(Sink::Mode::kHttp);
  DeliveryClientOptions options = SinkOptions(sink);
  DeliveryOutcome refused = DeliveryClient(options).Post(sink.url("/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(refused.failure, DeliveryFailure::kInvalidUrl) << refused.error;
  EXPECT_EQ(sink.request_count(), 0u);

  options.allow_http = true;
  DeliveryOutcome sent = DeliveryClient(options).Post(sink.url("/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(sent.failure, DeliveryFailure::kNone) << sent.error;
  EXPECT_EQ(sent.status, 200);
  ASSERT_EQ(sink.request_count(), 1u);
  EXPECT_EQ(sink.requests()[0].body, kBody);
}

TEST(HttpDeliveryClientTest, LoopbackIsRefusedUnlessAllowListed) {
  Sink sink;
  DeliveryClientOptions options;
  options.ca_file = sink.ca_file();
  DeliveryOutcome refused = DeliveryClient(options).Post(sink.url("/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(refused.failure, DeliveryFailure::kBlockedAddress) << refused.error;
  EXPECT_NE(refused.error.find("127.0.0.1 (loopback)"), std::string::npos) << refused.error;
  EXPECT_EQ(refused.status, 0);

  auto policy = AddressPolicy::FromAllowList("127.0.0.0/8");
  ASSERT_TRUE(policy.ok());
  options.policy = *policy;
  DeliveryOutcome allowed = DeliveryClient(options).Post(sink.url("/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(allowed.failure, DeliveryFailure::kNone) << allowed.error;
  EXPECT_EQ(allowed.status, 200);
  EXPECT_EQ(sink.request_count(), 1u);  // only the allowed one arrived
}

TEST(HttpDeliveryClientTest, AHostNameResolvingToLoopbackIsRefused) {
  Sink sink;
  DeliveryClientOptions options;
  options.ca_file = sink.ca_file();
  DeliveryOutcome refused =
      DeliveryClient(options).Post(sink.url_for("localhost", "/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(refused.failure, DeliveryFailure::kBlockedAddress) << refused.error;
  EXPECT_NE(refused.error.find("localhost"), std::string::npos) << refused.error;
  EXPECT_NE(refused.error.find("loopback"), std::string::npos) << refused.error;
  EXPECT_EQ(sink.request_count(), 0u);
}

TEST(HttpDeliveryClientTest, AnAllowedHostNameIsSentToWithItsNameInHostAndTls) {
  // localhost may resolve to ::1 first, where the sink does not listen: the next address is
  // tried. The certificate is checked against the name (its DNS:localhost).
  Sink sink;
  DeliveryClient client(SinkOptions(sink));
  DeliveryOutcome outcome = client.Post(sink.url_for("LocalHost", "/h"), kHeaders, kBody, 5000);
  EXPECT_EQ(outcome.failure, DeliveryFailure::kNone) << outcome.error;
  EXPECT_EQ(outcome.status, 200);
  ASSERT_EQ(sink.request_count(), 1u);
  EXPECT_EQ(sink.requests()[0].header("Host"), "localhost:" + std::to_string(sink.port()));
}

TEST(HttpDeliveryClientTest, AClosedPortIsAConnectionFailure) {
  Sink sink;  // for its certificate only
  DeliveryClient client(SinkOptions(sink));
  DeliveryOutcome outcome = client.Post("https://127.0.0.1:" + std::to_string(ClosedPort()) + "/h",
                                        kHeaders, kBody, 5000);
  EXPECT_EQ(outcome.failure, DeliveryFailure::kConnection) << outcome.error;
  EXPECT_LT(outcome.response_time_ms, 4000);
}

TEST(HttpDeliveryClientTest, UnusableUrlsAndHeadersAreRefusedBeforeConnecting) {
  Sink sink;
  DeliveryClient client(SinkOptions(sink));
  std::string port = std::to_string(sink.port());
  for (const std::string& url : std::vector<std::string>{
           "ftp://127.0.0.1:" + port + "/h", "https://user:pw@127.0.0.1:" + port + "/h",
           "https://127.0.0.1:0/h", "https://127.0.0.1:99999/h", "https:///h", "127.0.0.1/h",
           "https://127.0.0.1:" + port + "/a b", "https://[::1%25lo]:" + port + "/",
           "https://exa$mple.com/"}) {
    DeliveryOutcome outcome = client.Post(url, kHeaders, kBody, 5000);
    EXPECT_EQ(outcome.failure, DeliveryFailure::kInvalidUrl) << url;
    EXPECT_FALSE(outcome.error.empty()) << url;
  }
  DeliveryOutcome injected =
      client.Post(sink.url("/h"), {{"X-Evil", "a\r\nX-Injected: 1"}}, kBody, 5000);
  EXPECT_EQ(injected.failure, DeliveryFailure::kInvalidUrl);
  DeliveryOutcome bad_name = client.Post(sink.url("/h"), {{"Bad Name", "v"}}, kBody, 5000);
  EXPECT_EQ(bad_name.failure, DeliveryFailure::kInvalidUrl);
  EXPECT_EQ(sink.request_count(), 0u);
}

TEST(HttpDeliveryClientTest, UrlsParseIntoHostPortAndTarget) {
  auto parsed = DeliveryClient::ParseUrl("HTTPS://Example.COM/a/b?x=1&y=%20#frag");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_TRUE(parsed->https);
  EXPECT_EQ(parsed->host, "example.com");
  EXPECT_EQ(parsed->port, 443);
  EXPECT_EQ(parsed->target, "/a/b?x=1&y=%20");

  auto v6 = DeliveryClient::ParseUrl("http://[2001:db8::1]:8080?q");
  ASSERT_TRUE(v6.ok()) << v6.status().ToString();
  EXPECT_FALSE(v6->https);
  EXPECT_EQ(v6->host, "2001:db8::1");
  EXPECT_EQ(v6->port, 8080);
  EXPECT_EQ(v6->target, "/?q");

  auto bare = DeliveryClient::ParseUrl("https://example.com");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->target, "/");

  auto non_ascii = DeliveryClient::ParseUrl("https://example.com/caf\xc3\xa9");
  ASSERT_TRUE(non_ascii.ok());
  EXPECT_EQ(non_ascii->target, "/caf%C3%A9");
}

}  // namespace
}  // namespace cm::http
