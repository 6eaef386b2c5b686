#pragma once

// A webhook receiver for tests: an HTTPS (or plain HTTP) server on 127.0.0.1 and a free port
// that records every request it gets and answers as the test scripts it to, including the
// ways real endpoints misbehave (slow, silent, resetting, dripping or flooding a body).
//
//   cm::testing::WebhookSink sink;                      // HTTPS, self-signed certificate
//   options.ca_file = sink.ca_file();                   // how a client comes to trust it
//   sink.Script({Reply::Status(500), Reply::RetryAfter(429, "2")});  // then the responder
//   sink.SetResponder([](const WebhookSink::Request& r) { return Reply::Status(204); });
//   client.Post(sink.url("/hooks/a"), ...);
//   ASSERT_TRUE(sink.WaitForRequests(1, 5s));
//   sink.requests()[0].header("webhook-id");
//
// The certificate (an EC P-256 key, CN 127.0.0.1, subjectAltName IP:127.0.0.1, IP:::1 and
// DNS:localhost) is made at start with OpenSSL and written to a temporary directory, removed
// with the sink.
#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/deadline_scale.h"
#include "tests/support/http_listen.h"

namespace cm::testing {

class WebhookSink {
 public:
  using Clock = std::chrono::steady_clock;

  // One request as it arrived.
  struct Request {
    std::string method;
    std::string path;                                          // decoded, without the query
    std::string target;                                        // as sent: path and query
    std::vector<std::pair<std::string, std::string>> headers;  // httplib's order (by name)
    std::string body;
    Clock::time_point arrived;
    int remote_port = 0;  // the client's port: one per connection

    // The first value of the header `name` (any case), or "".
    std::string header(std::string_view name) const {
      for (const auto& [key, value] : headers)
        if (EqualsIgnoreCase(key, name)) return value;
      return "";
    }
    size_t header_count(std::string_view name) const {
      return static_cast<size_t>(std::count_if(headers.begin(), headers.end(), [&](const auto& h) {
        return EqualsIgnoreCase(h.first, name);
      }));
    }
  };

  // How to answer one request. Build with the named constructors; fields may be combined
  // (a delayed 503 with Retry-After, say).
  struct Reply {
    int status = 200;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    std::chrono::milliseconds delay{0};  // wait before answering at all
    bool reset = false;                  // close the connection without any answer
    // A body of drip_bytes bytes (that Content-Length), one byte every drip_interval.
    size_t drip_bytes = 0;
    std::chrono::milliseconds drip_interval{0};
    size_t huge_bytes = 0;  // a body of this many bytes, streamed as fast as it is read

    static Reply Status(int status, std::string body = "") {
      Reply reply;
      reply.status = status;
      reply.body = std::move(body);
      return reply;
    }
    // 429 or 503 with Retry-After (delta-seconds "2" or an HTTP date).
    static Reply RetryAfter(int status, std::string value) {
      Reply reply = Status(status);
      reply.headers.emplace_back("Retry-After", std::move(value));
      return reply;
    }
    static Reply Redirect(std::string location, int status = 302) {
      Reply reply = Status(status);
      reply.headers.emplace_back("Location", std::move(location));
      return reply;
    }
    // Answers `status` only after `delay` (longer than a client's timeout: a timeout).
    static Reply Slow(std::chrono::milliseconds delay, int status = 200) {
      Reply reply = Status(status);
      reply.delay = delay;
      return reply;
    }
    static Reply Reset() {
      Reply reply;
      reply.reset = true;
      return reply;
    }
    static Reply SlowDrip(size_t bytes, std::chrono::milliseconds interval, int status = 200) {
      Reply reply = Status(status);
      reply.drip_bytes = bytes;
      reply.drip_interval = interval;
      return reply;
    }
    static Reply Huge(size_t bytes, int status = 200) {
      Reply reply = Status(status);
      reply.huge_bytes = bytes;
      return reply;
    }
  };

  using Responder = std::function<Reply(const Request&)>;

  enum class Mode { kHttps, kHttp };

  explicit WebhookSink(Mode mode = Mode::kHttps) : mode_(mode) {
    if (mode_ == Mode::kHttps) {
      char dir[] = "/tmp/cm-webhook-sink-XXXXXX";
      if (::mkdtemp(dir) == nullptr) throw std::runtime_error("cannot create a temp directory");
      dir_ = dir;
      ca_file_ = dir_ + "/cert.pem";
      auto [cert, key] = MakeCertificate(ca_file_);
      server_ = std::make_unique<httplib::SSLServer>(cert.get(), key.get());
    } else {
      server_ = std::make_unique<httplib::Server>();
    }
    if (!server_->is_valid()) throw std::runtime_error("the sink's server is not valid");
    // Every worker blocks SIGPIPE: a client that hangs up (as a capped or timed-out client
    // does) must not end the test process when OpenSSL writes to the socket.
    server_->new_task_queue = [] { return new SigpipeFreePool(8); };
    server_->set_payload_max_length(64 * 1024 * 1024);
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      Handle(req, res);
    };
    server_->Post(".*", handler);
    server_->Put(".*", handler);
    server_->Get(".*", handler);
    server_->Delete(".*", handler);
    server_->Patch(".*", handler);
    port_ = BindWithFullBacklog(*server_, "127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("the sink cannot listen");
    listener_ = std::thread([this] { server_->listen_after_bind(); });
    // stop() before listen_after_bind has started would not end it.
    while (!server_->is_running()) std::this_thread::yield();
  }

  ~WebhookSink() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    server_->stop();
    listener_.join();
    server_.reset();  // joins the workers
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  WebhookSink(const WebhookSink&) = delete;
  WebhookSink& operator=(const WebhookSink&) = delete;

  int port() const { return port_; }
  // "https://127.0.0.1:<port><path>" (http:// for Mode::kHttp).
  std::string url(std::string_view path = "/") const { return url_for("127.0.0.1", path); }
  // The same with another host name or address that reaches 127.0.0.1 ("localhost", "[::1]"
  // only when the sink listens there: it does not).
  std::string url_for(std::string_view host, std::string_view path = "/") const {
    return std::string(mode_ == Mode::kHttps ? "https://" : "http://") + std::string(host) + ":" +
           std::to_string(port_) + std::string(path);
  }
  // The PEM certificate a client must trust (empty for Mode::kHttp).
  const std::string& ca_file() const { return ca_file_; }

  // Answers requests whose scripted replies ran out (the default answers 200 "ok"). Returns
  // once no call of the previous responder is running.
  void SetResponder(Responder responder) {
    std::unique_lock<std::mutex> lock(mu_);
    responder_ = std::move(responder);
    cv_.wait(lock, [this] { return responder_calls_ == 0; });
  }

  // Ends a Respond: the default answers again, and no call of the responder is still running.
  class ResponderScope {
   public:
    explicit ResponderScope(WebhookSink& sink) : sink_(&sink) {}
    ~ResponderScope() {
      if (sink_ != nullptr) sink_->SetResponder(nullptr);
    }
    ResponderScope(ResponderScope&& other) noexcept : sink_(std::exchange(other.sink_, nullptr)) {}
    ResponderScope(const ResponderScope&) = delete;
    ResponderScope& operator=(const ResponderScope&) = delete;
    ResponderScope& operator=(ResponderScope&&) = delete;

   private:
    WebhookSink* sink_;
  };
  // SetResponder for as long as the returned scope lives. A responder that captures a test's
  // locals must end before they do: a request counted by WaitForRequests may still be in its
  // responder when the test returns (a 20 ms responder once locked a destroyed mutex).
  [[nodiscard]] ResponderScope Respond(Responder responder) {
    SetResponder(std::move(responder));
    return ResponderScope(*this);
  }
  // Replies for the next requests, in order, before the responder is asked again.
  void Script(std::vector<Reply> replies) {
    std::lock_guard<std::mutex> lock(mu_);
    script_.assign(replies.begin(), replies.end());
  }

  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  size_t request_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_.size();
  }

  // Waits until `predicate` holds for the requests so far (checked on each arrival); false at
  // the deadline.
  bool WaitFor(const std::function<bool(const std::vector<Request>&)>& predicate,
               Clock::time_point deadline) const {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return predicate(requests_); });
  }
  // The timeout stretches with kDeadlineScale (the asan preset).
  bool WaitFor(const std::function<bool(const std::vector<Request>&)>& predicate,
               std::chrono::milliseconds timeout) const {
    return WaitFor(predicate, Clock::now() + timeout * kDeadlineScale);
  }
  bool WaitForRequests(size_t count, std::chrono::milliseconds timeout) const {
    return WaitFor([count](const std::vector<Request>& r) { return r.size() >= count; }, timeout);
  }

 private:
  class SigpipeFreePool : public httplib::TaskQueue {
   public:
    explicit SigpipeFreePool(size_t threads) : pool_(threads) {}
    void enqueue(std::function<void()> fn) override {
      pool_.enqueue([fn = std::move(fn)] {
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
        fn();
      });
    }
    void shutdown() override { pool_.shutdown(); }

   private:
    httplib::ThreadPool pool_;
  };

  static bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  }

  using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
  using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;

  // A self-signed certificate for 127.0.0.1, ::1 and localhost, also written to `pem_path`.
  static std::pair<CertPtr, KeyPtr> MakeCertificate(const std::string& pem_path) {
    KeyPtr key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
    CertPtr cert(X509_new(), &X509_free);
    if (!key || !cert) throw std::runtime_error("cannot make a key or certificate");
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    // A CA certificate as well, so it can stand in as its own trust anchor.
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1,IP:::1,DNS:localhost"},
                              std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      if (ext == nullptr) throw std::runtime_error("cannot make a certificate extension");
      X509_add_ext(cert.get(), ext, -1);
      X509_EXTENSION_free(ext);
    }
    std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new_file(pem_path.c_str(), "w"), &BIO_free);
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0 || !out ||
        PEM_write_bio_X509(out.get(), cert.get()) != 1)
      throw std::runtime_error("cannot write a certificate to " + pem_path);
    return {std::move(cert), std::move(key)};
  }

  // The accepted socket of a plain-HTTP request: the one whose local port is the sink's and
  // whose peer port is the request's.
  int SocketOf(const httplib::Request& req) const {
    if (req.ssl != nullptr) return SSL_get_fd(req.ssl);
    struct CloseDir {
      void operator()(DIR* dir) const { closedir(dir); }
    };
    std::unique_ptr<DIR, CloseDir> fds(opendir("/proc/self/fd"));
    if (!fds) return -1;
    while (dirent* entry = readdir(fds.get())) {
      char* end = nullptr;
      long fd = std::strtol(entry->d_name, &end, 10);
      if (end == entry->d_name || *end != '\0') continue;
      sockaddr_storage local{}, peer{};
      socklen_t local_len = sizeof local, peer_len = sizeof peer;
      if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &local_len) != 0 ||
          getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0 ||
          local.ss_family != AF_INET || peer.ss_family != AF_INET)
        continue;
      if (ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port) == port_ &&
          ntohs(reinterpret_cast<sockaddr_in*>(&peer)->sin_port) == req.remote_port)
        return static_cast<int>(fd);
    }
    return -1;
  }

  // Waits `duration` unless the sink stops first; false when it stops.
  bool Pause(std::chrono::milliseconds duration) const {
    std::unique_lock<std::mutex> lock(mu_);
    return !cv_.wait_for(lock, duration, [this] { return stopping_; });
  }

  void Handle(const httplib::Request& req, httplib::Response& res) {
    Request recorded;
    recorded.method = req.method;
    recorded.path = req.path;
    recorded.target = req.target;
    recorded.headers.assign(req.headers.begin(), req.headers.end());
    recorded.body = req.body;
    recorded.arrived = Clock::now();
    recorded.remote_port = req.remote_port;
    Reply reply;
    std::unique_lock<std::mutex> lock(mu_);
    requests_.push_back(recorded);
    cv_.notify_all();
    if (!script_.empty()) {
      reply = std::move(script_.front());
      script_.pop_front();
    } else if (responder_) {
      Responder responder = responder_;
      ++responder_calls_;
      lock.unlock();  // a responder may look at the sink itself
      reply = responder(recorded);
      lock.lock();
      if (--responder_calls_ == 0) cv_.notify_all();
    } else {
      reply = Reply::Status(200, "ok");
    }
    if (lock.owns_lock()) lock.unlock();

    if (reply.delay.count() > 0 && !Pause(reply.delay)) return;
    if (reply.reset) {
      // The client sees the connection end where a status line should be.
      int fd = SocketOf(req);
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
      return;
    }
    res.status = reply.status;
    for (const auto& [name, value] : reply.headers) res.set_header(name, value);
    if (reply.drip_bytes > 0) {
      auto interval = reply.drip_interval;
      res.set_content_provider(reply.drip_bytes, "text/plain",
                               [this, interval](size_t, size_t, httplib::DataSink& sink) {
                                 if (!Pause(interval)) return false;
                                 return sink.write("x", 1);
                               });
    } else if (reply.huge_bytes > 0) {
      auto chunk = std::make_shared<std::string>(64 * 1024, 'y');
      res.set_content_provider(reply.huge_bytes, "text/plain",
                               [this, chunk](size_t, size_t length, httplib::DataSink& sink) {
                                 if (Stopping()) return false;
                                 return sink.write(chunk->data(), std::min(length, chunk->size()));
                               });
    } else if (!reply.body.empty()) {
      res.set_content(reply.body, "text/plain");
    }
  }

  bool Stopping() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stopping_;
  }

  Mode mode_;
  std::string dir_;
  std::string ca_file_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread listener_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<Request> requests_;
  std::deque<Reply> script_;
  Responder responder_;
  int responder_calls_ = 0;  // calls of a responder running now
};

}  // namespace cm::testing
