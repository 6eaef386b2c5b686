// topology::HttpServer with --tls-cert/--tls-key (issue 13): HTTPS clients get the same answers
// as plain ones, the reactor's own refusals included; plain HTTP on the TLS port gets nothing
// that looks like success; clients that never finish a handshake hold no worker and are cut
// off at the request timeout; unusable certificate or key files stop Start with a Status.
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "raw_http.h"
#include "topology/query/http_server.h"

namespace cm::topology {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using cm::testing::RawHttpConnection;

// A P-256 key in PEM at `path`.
std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> WriteKey(const std::string& path) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new_file(path.c_str(), "w"), &BIO_free);
  if (!key || !out ||
      PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw std::runtime_error("cannot write a key to " + path);
  return key;
}

// A self-signed certificate for 127.0.0.1 (CN and subjectAltName IP), as `openssl req -x509`
// makes one.
void WriteCertificate(EVP_PKEY* key, const std::string& path) {
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_EXTENSION* san = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, "IP:127.0.0.1");
  X509_add_ext(cert.get(), san, -1);
  X509_EXTENSION_free(san);
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new_file(path.c_str(), "w"), &BIO_free);
  if (X509_sign(cert.get(), key, EVP_sha256()) == 0 || !out ||
      PEM_write_bio_X509(out.get(), cert.get()) != 1)
    throw std::runtime_error("cannot write a certificate to " + path);
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/cm-tls-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    cert_ = dir_ + "/cert.pem";
    key_ = dir_ + "/key.pem";
    other_key_ = dir_ + "/other-key.pem";
    WriteCertificate(WriteKey(key_).get(), cert_);
    WriteKey(other_key_);
  }
  void TearDown() override {
    if (server_) server_->Stop();
    std::filesystem::remove_all(dir_);
  }

  HttpServerOptions TlsOptions() const {
    HttpServerOptions o;
    o.tls_cert_file = cert_;
    o.tls_key_file = key_;
    return o;
  }

  void StartServer(HttpServerOptions options) {
    server_ = std::make_unique<HttpServer>(options);
    server_->Route("POST", "/v1/echo", RouteAccess::Public(), [](const HttpRequest& req) {
      json body = json::parse(req.body);
      return HttpResponse::Json(200, {{"echo", body}, {"bytes", req.body.size()}});
    });
    auto started = server_->Start("127.0.0.1", 0);
    ASSERT_TRUE(started.ok()) << started.ToString();
  }

  // An HTTPS client that trusts only the generated certificate and checks the host.
  std::unique_ptr<httplib::SSLClient> Client() const {
    auto client = std::make_unique<httplib::SSLClient>("127.0.0.1", server_->port());
    client->set_ca_cert_path(cert_);
    client->enable_server_certificate_verification(true);
    client->set_connection_timeout(5);
    client->set_read_timeout(5);
    return client;
  }

  std::string dir_, cert_, key_, other_key_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(TlsTest, HealthAndAPostBodyAreServedOverVerifiedTls) {
  StartServer(TlsOptions());
  auto client = Client();
  client->set_keep_alive(true);
  auto health = client->Get("/health");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  // Larger than a TLS record (16 KiB) many times over, on the same keep-alive connection.
  for (size_t size : {size_t{10}, size_t{300'000}}) {
    std::string text(size, 'x');
    auto echoed = client->Post("/v1/echo", json{{"text", text}}.dump(), "application/json");
    ASSERT_TRUE(echoed) << httplib::to_string(echoed.error());
    EXPECT_EQ(echoed->status, 200);
    EXPECT_EQ(echoed->get_header_value("Content-Type"), "application/json");
    EXPECT_EQ(json::parse(echoed->body)["echo"]["text"], text);
  }
}

TEST_F(TlsTest, TheReactorsOwnRefusalsAreSentOverTls) {
  HttpServerOptions options = TlsOptions();
  options.limits.max_header_count = 20;
  StartServer(options);
  httplib::Headers many;
  for (int i = 0; i < 30; ++i) many.emplace("X-Extra-" + std::to_string(i), "1");
  auto refused = Client()->Get("/health", many);
  ASSERT_TRUE(refused) << httplib::to_string(refused.error());
  EXPECT_EQ(refused->status, 431);
  EXPECT_EQ(json::parse(refused->body)["error"]["code"], "too_many_headers");
}

TEST_F(TlsTest, PlainHttpOnTheTlsPortGetsNoSuccessAndTlsGoesOn) {
  StartServer(TlsOptions());
  RawHttpConnection plain(server_->port());
  ASSERT_TRUE(plain.Send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
  std::string answer = plain.ReadUntilClosed(std::chrono::seconds(5));
  EXPECT_EQ(answer.find("200"), std::string::npos) << answer;
  EXPECT_NE(RawHttpConnection::Status(answer), 200);
  httplib::Client library(std::string("127.0.0.1"), server_->port());
  library.set_read_timeout(5);
  auto r = library.Get("/health");
  EXPECT_TRUE(!r || r->status != 200);

  auto metrics = Client()->Get("/metrics");
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find(R"(cmstream_http_refused_total{reason="tls_handshake_failed"})"),
            std::string::npos)
      << metrics->body;
}

TEST_F(TlsTest, ClientsThatNeverFinishTheHandshakeDelayNoOneAndAreCutOff) {
  HttpServerOptions options = TlsOptions();
  options.request_timeout = std::chrono::milliseconds(1'000);
  options.threads = 1;
  StartServer(options);
  // Silent after connecting, or stopped in the middle of a ClientHello record.
  std::vector<std::unique_ptr<RawHttpConnection>> stalled;
  for (int i = 0; i < 20; ++i) {
    stalled.push_back(std::make_unique<RawHttpConnection>(server_->port()));
    if (i % 2 == 1) {
      ASSERT_TRUE(stalled.back()->Send(std::string("\x16\x03\x01\x02\x00\x01", 6)));
    }
  }
  auto started = Clock::now();
  auto health = Client()->Get("/health");
  ASSERT_TRUE(health) << httplib::to_string(health.error());
  EXPECT_EQ(health->status, 200);
  EXPECT_LT(Clock::now() - started, std::chrono::milliseconds(900));
  // Each is closed at the request timeout with no answer (it has no TLS session to carry one).
  for (auto& c : stalled) {
    EXPECT_EQ(c->ReadUntilClosed(std::chrono::seconds(10)), "");
  }
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(5));
}

TEST_F(TlsTest, StartRefusesMissingUnreadableOrMismatchedFiles) {
  auto refused = [&](const std::string& cert, const std::string& key) {
    HttpServerOptions o;
    o.tls_cert_file = cert;
    o.tls_key_file = key;
    HttpServer server(o);
    return server.Start("127.0.0.1", 0);
  };
  state::Status mismatch = refused(cert_, other_key_);
  EXPECT_EQ(mismatch.code(), state::Status::Code::kInvalidArgument);
  EXPECT_NE(mismatch.message().find(other_key_), std::string::npos) << mismatch.ToString();
  EXPECT_NE(mismatch.message().find("does not match"), std::string::npos) << mismatch.ToString();

  state::Status missing = refused(dir_ + "/nothing.pem", key_);
  EXPECT_EQ(missing.code(), state::Status::Code::kInvalidArgument);
  EXPECT_NE(missing.message().find(dir_ + "/nothing.pem"), std::string::npos);

  // A key where the certificate belongs, and the other way round.
  state::Status swapped = refused(key_, cert_);
  EXPECT_EQ(swapped.code(), state::Status::Code::kInvalidArgument);
  EXPECT_NE(swapped.message().find(key_), std::string::npos) << swapped.ToString();

  state::Status no_key = refused(cert_, "");
  EXPECT_EQ(no_key.code(), state::Status::Code::kInvalidArgument) << no_key.ToString();
}

}  // namespace
}  // namespace cm::topology
