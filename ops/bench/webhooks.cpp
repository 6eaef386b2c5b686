// Webhook deliveries (issue 11): one `cmstream run --embedded --topology cloudmatrix` child
// process delivers to a plain-HTTP loopback sink in this process. Events go in over
// POST /v1/webhooks/events, fan out to the endpoints of one organization, are signed and sent
// over HTTP, and each outcome is appended to cloudmatrix.webhook-attempts and applied; a run
// ends when the sink has received every delivery and the endpoints' stats count them all.
// Against it, wrk posts the same body and headers to the same sink. Second measurement: the
// same, with one more endpoint whose sink refuses connections for --down-seconds.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "bench_common.h"
#include "cmstream_process.h"
#include "tests/support/http_listen.h"

using namespace cm::bench;
using nlohmann::json;

extern char** environ;

namespace {

struct Options {
  std::string cmstream = CM_BINARY_DIR "/cmstream";
  std::string wrk = "wrk";
  int events = 20000;
  int endpoints = 4;  // healthy endpoints of the one organization each event fans out to
  int clients = 256;  // enqueueing HTTP clients (each command waits ~0.5 s on the embedded broker)
  int concurrency = 64;
  int endpoint_concurrency = 64;
  int sink_threads = 192;
  int wrk_seconds = 10;
  int down_seconds = 60;
  int runs = 3;
  bool skip_down = false;
  std::string cache_max_bytes = "64MiB";  // `cmstream run`'s default
};

// The loopback receiver: POST /s/<n> answers 200 at once and counts per n. Its pool has a
// thread per keep-alive connection wrk holds (httplib serves a connection on one thread).
class Sink {
 public:
  static constexpr int kPaths = 256;
  explicit Sink(int threads) : port_(FreePort()) {
    server_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    // httplib writes the head and the body apart: without this, Nagle holds the body back for
    // the client's delayed ACK (~40 ms) on every keep-alive response wrk reads.
    server_.set_tcp_nodelay(true);
    // As a production receiver (nginx keeps 1,000 requests per connection): httplib's default
    // of 5 makes every client reconnect constantly, and its listen backlog of 5 then drops
    // SYNs (1 s retransmits, resets), which measures the sink, not the client.
    server_.set_keep_alive_max_count(100000);
    server_.Post(R"(/s/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
      const int n = std::stoi(req.matches[1]);
      if (n >= 0 && n < kPaths) counts_[n].fetch_add(1, std::memory_order_relaxed);
      if (!captured_.load(std::memory_order_acquire) && req.has_header("webhook-signature")) {
        std::lock_guard lock(mu_);
        if (!captured_.load()) {
          sample_ = req;
          captured_.store(true, std::memory_order_release);
        }
      }
      res.status = 200;
      res.set_content("ok", "text/plain");
    });
    if (cm::testing::BindWithFullBacklog(server_, "127.0.0.1", port_) != port_)
      Die("the sink cannot listen");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~Sink() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  uint64_t Count(int n) const { return counts_[n].load(); }
  // A delivery the engine made: wrk sends the same body and headers.
  std::optional<httplib::Request> Sample() {
    if (!captured_.load()) return std::nullopt;
    std::lock_guard lock(mu_);
    return sample_;
  }

 private:
  int port_;
  httplib::Server server_;
  std::thread thread_;
  std::atomic<uint64_t> counts_[kPaths] = {};
  std::atomic<bool> captured_{false};
  std::mutex mu_;
  httplib::Request sample_;
};

// A sink that is down: its port refuses connections until `down` has passed since Start(),
// then it answers 200 (so a down time shorter than a run shows the recovery too).
class DownSink {
 public:
  DownSink() : port_(FreePort()) {}
  ~DownSink() { Stop(); }
  void Start(std::chrono::seconds down) {
    thread_ = std::thread([this, down] {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, down, [&] { return stopped_; })) return;
      server_ = std::make_unique<httplib::Server>();
      server_->Post(R"(/s/(\d+))", [](const httplib::Request&, httplib::Response& res) {
        res.status = 200;
        res.set_content("ok", "text/plain");
      });
      auto* s = server_.get();
      lock.unlock();
      s->listen("127.0.0.1", port_);
      done_.store(true);
    });
  }
  void Stop() {
    httplib::Server* s = nullptr;
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
      s = server_.get();
    }
    cv_.notify_all();
    // stop() before listen() has started would not end it: asks again until listen() returns.
    while (s != nullptr && !done_.load()) {
      s->stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_; }

 private:
  int port_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::atomic<bool> done_{false};
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

// `cmstream run --embedded --topology cloudmatrix` with webhooks allowed to loopback HTTP.
class Instance : public CmstreamProcess {
 public:
  Instance(const Options& o, const std::filesystem::path& dir)
      : CmstreamProcess(
            o.cmstream, Fresh(dir),
            {"--topology", "cloudmatrix", "--http-threads",
             std::to_string(std::max(64, o.clients + 16)), "--webhook-allow-http",
             "--webhook-allow-addresses", "127.0.0.0/8", "--webhook-concurrency",
             std::to_string(o.concurrency), "--webhook-endpoint-concurrency",
             std::to_string(o.endpoint_concurrency), "--cache-max-bytes", o.cache_max_bytes}) {}

 private:
  static const std::filesystem::path& Fresh(const std::filesystem::path& dir) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
  }
};

std::unique_ptr<httplib::Client> ApiClient(const Instance& in) {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", in.port());
  c->set_bearer_token_auth(in.key().c_str());
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  c->set_read_timeout(30, 0);
  return c;
}

// A command, retried with the same Idempotency-Key (so it applies once) while the server is
// overloaded or the connection fails.
json Command(httplib::Client& c, const std::string& path, const json& body, const std::string& key,
             std::atomic<uint64_t>* retries = nullptr) {
  httplib::Headers headers{{"Idempotency-Key", key}};
  const std::string text = body.dump();
  for (int attempt = 0;; ++attempt) {
    auto r = c.Post(path.c_str(), headers, text, "application/json");
    if (r && r->status / 100 == 2) return json::parse(r->body, nullptr, false);
    if (r && r->status != 503 && r->status != 504)
      Die(path + " answered " + std::to_string(r->status) + ": " + r->body);
    if (attempt == 20) Die(path + " kept failing");
    if (retries) ++*retries;
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * (attempt + 1)));
  }
}

std::string Register(httplib::Client& c, const std::string& org, const std::string& url) {
  json r = Command(c, "/v1/webhooks", {{"organizationId", org}, {"url", url}, {"events", {"*"}}},
                   "bench-register-" + org + "-" + url);
  if (!r.contains("id")) Die("registering a webhook answered " + r.dump());
  return r["id"].get<std::string>();
}

int64_t Successful(httplib::Client& c, const std::string& webhook) {
  auto r = c.Get(("/v1/webhooks/" + webhook).c_str());
  if (!r || r->status != 200) return -1;
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("stats")) return -1;
  return j["stats"].value("successfulDeliveries", int64_t{0});
}

// The healthy endpoints' failed attempts ({class: count}, from GET /v1/webhooks/{id}/health):
// a loopback sink that always answers 200 should see none, and each one is retried later.
std::map<std::string, int64_t> FailedAttempts(httplib::Client& c,
                                              const std::vector<std::string>& webhooks) {
  std::map<std::string, int64_t> failed;
  for (const auto& w : webhooks) {
    auto r = c.Get(("/v1/webhooks/" + w + "/health").c_str());
    json j = r && r->status == 200 ? json::parse(r->body, nullptr, false) : json();
    if (!j.is_object()) Die("GET /v1/webhooks/" + w + "/health failed");
    for (const auto& e : j.value("errorBreakdown", json::array()))
      failed[e.value("errorClass", "?")] += e.value("count", int64_t{0});
  }
  return failed;
}

struct RunResult {
  double enqueue_seconds = 0;  // first enqueue until every event was accepted
  double sink_seconds = 0;     // first enqueue until the sink had every healthy delivery
  double total_seconds = 0;    // ... and the endpoints' stats counted them all
  uint64_t delivered = 0;
  uint64_t retries = 0;
  std::map<std::string, int64_t> failed;  // the healthy endpoints' failed attempts by class
  int64_t Failed() const {
    int64_t n = 0;
    for (const auto& [error_class, count] : failed) n += count;
    return n;
  }
  double Rate() const { return total_seconds > 0 ? delivered / total_seconds : 0; }
};

// One run in a fresh organization: `healthy` endpoints on the sink (paths first_path...), plus
// one on `down` when given. Times until the healthy endpoints have every delivery.
// With `direct`, the events are produced straight into cloudmatrix.events (where usage and
// team events come from) instead of over POST /v1/webhooks/events: the delivery path alone.
RunResult Deliver(const Options& o, const Instance& in, Sink& sink, int& next_path,
                  const std::string& org, DownSink* down, bool direct = false) {
  auto admin = ApiClient(in);
  std::vector<std::string> healthy;
  std::vector<int> paths;
  for (int e = 0; e < o.endpoints; ++e) {
    const int path = next_path++ % Sink::kPaths;
    paths.push_back(path);
    healthy.push_back(
        Register(*admin, org,
                 "http://127.0.0.1:" + std::to_string(sink.port()) + "/s/" + std::to_string(path)));
  }
  if (down) Register(*admin, org, "http://127.0.0.1:" + std::to_string(down->port()) + "/s/0");
  std::vector<uint64_t> before;
  for (int p : paths) before.push_back(sink.Count(p));
  const uint64_t want = static_cast<uint64_t>(o.events) * static_cast<uint64_t>(o.endpoints);

  RunResult r;
  std::atomic<int> next{0};
  std::atomic<uint64_t> retries{0};
  const auto start = Clock::now();
  if (down) down->Start(std::chrono::seconds(o.down_seconds));
  std::vector<std::thread> threads;
  if (direct) {
    threads.emplace_back([&] {
      rd_kafka_conf_t* conf = rd_kafka_conf_new();
      Set(conf, "bootstrap.servers", in.Bootstrap());
      Set(conf, "linger.ms", "5");
      Set(conf, "partitioner", "murmur2_random");  // Kafka's, as the engine partitions by
      cm::topology::KafkaHandle p = NewClient(RD_KAFKA_PRODUCER, conf);
      for (int i = 0; i < o.events; ++i) {
        const std::string value =
            json({{"eventId", "evt-" + std::to_string(i)},
                  {"eventType", "document.created"},
                  {"organizationId", org},
                  {"data", {{"documentId", "doc-" + std::to_string(i)}, {"title", "bench"}}}})
                .dump();
        for (;;) {
          auto err =
              rd_kafka_producev(p.get(), RD_KAFKA_V_TOPIC("cloudmatrix.events"),
                                RD_KAFKA_V_KEY(org.data(), org.size()),
                                RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
          if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
          if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) Die(rd_kafka_err2str(err));
          rd_kafka_poll(p.get(), 10);
        }
        rd_kafka_poll(p.get(), 0);
      }
      if (rd_kafka_flush(p.get(), 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        Die("producing the events did not finish");
    });
  }
  for (int t = 0; t < (direct ? 0 : o.clients); ++t) {
    threads.emplace_back([&] {
      auto c = ApiClient(in);
      for (int i; (i = next.fetch_add(1)) < o.events;) {
        const std::string id = "evt-" + std::to_string(i);
        Command(*c, "/v1/webhooks/events",
                {{"organizationId", org},
                 {"eventId", id},
                 {"eventType", "document.created"},
                 {"data", {{"documentId", "doc-" + std::to_string(i)}, {"title", "bench"}}}},
                "bench-" + org + "-" + id, &retries);
      }
    });
  }
  std::thread joiner([&] {
    for (auto& t : threads) t.join();
    r.enqueue_seconds = Seconds(Clock::now() - start);
  });
  const auto deadline = start + std::chrono::minutes(10);
  auto received = [&] {
    uint64_t n = 0;
    for (size_t i = 0; i < paths.size(); ++i) n += sink.Count(paths[i]) - before[i];
    return n;
  };
  while (received() < want) {
    if (Clock::now() > deadline)
      Die("the sink has " + std::to_string(received()) + " of " + std::to_string(want) +
          " deliveries after 10 minutes; see " + in.log());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.sink_seconds = Seconds(Clock::now() - start);
  for (;;) {
    int64_t applied = 0;
    for (const auto& w : healthy) applied += std::max<int64_t>(0, Successful(*admin, w));
    if (static_cast<uint64_t>(applied) >= want) break;
    if (Clock::now() > deadline)
      Die("the endpoints' stats count " + std::to_string(applied) + " of " + std::to_string(want) +
          " deliveries after 10 minutes; see " + in.log());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.total_seconds = Seconds(Clock::now() - start);
  joiner.join();
  if (down) down->Stop();
  r.delivered = received();
  r.retries = retries.load();
  r.failed = FailedAttempts(*admin, healthy);
  for (const auto& [error_class, count] : r.failed)
    Say("bench: %s: %lld failed attempts to healthy endpoints: %s\n", org.c_str(),
        static_cast<long long>(count), error_class.c_str());
  return r;
}

// wrk against the same sink: the captured delivery's body and headers, from a Lua script.
double Wrk(const Options& o, Sink& sink, const httplib::Request& sample,
           const std::filesystem::path& dir) {
  const std::string script = (dir / "post.lua").string();
  {
    std::ofstream f(script);
    f << "wrk.method = \"POST\"\n";
    f << "wrk.body = " << json(sample.body).dump() << "\n";
    for (const auto& [name, value] : sample.headers) {
      std::string lower = name;
      for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (lower == "host" || lower == "content-length" || lower == "connection" ||
          lower == "remote_addr" || lower == "remote_port" || lower == "local_addr" ||
          lower == "local_port")
        continue;
      f << "wrk.headers[" << json(name).dump() << "] = " << json(value).dump() << "\n";
    }
  }
  const std::string cmd = o.wrk + " -t2 -c" + std::to_string(o.concurrency) + " -d" +
                          std::to_string(o.wrk_seconds) + "s -s " + script +
                          " http://127.0.0.1:" + std::to_string(sink.port()) + "/s/" +
                          std::to_string(Sink::kPaths - 1) + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) Die("cannot run " + cmd);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  if (::pclose(p) != 0) Die("wrk failed (is it installed? ops/bootstrap): " + out);
  const auto at = out.find("Requests/sec:");
  if (at == std::string::npos) Die("no Requests/sec in wrk's output: " + out);
  if (out.find("Non-2xx") != std::string::npos) Die("wrk saw non-2xx answers: " + out);
  return std::stod(out.substr(at + 13));
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"webhook deliveries/s through cmstream against wrk to the same loopback sink"};
  app.add_option("--cmstream", o.cmstream, "the cmstream binary")->capture_default_str();
  app.add_option("--wrk", o.wrk, "the wrk binary")->capture_default_str();
  app.add_option("--events", o.events, "events per run")->capture_default_str();
  app.add_option("--endpoints", o.endpoints, "healthy endpoints each event fans out to")
      ->capture_default_str();
  app.add_option("--clients", o.clients, "concurrent enqueueing clients")->capture_default_str();
  app.add_option("--concurrency", o.concurrency, "--webhook-concurrency, and wrk's connections")
      ->capture_default_str();
  app.add_option("--endpoint-concurrency", o.endpoint_concurrency, "--webhook-endpoint-concurrency")
      ->capture_default_str();
  app.add_option("--wrk-seconds", o.wrk_seconds, "wrk's duration")->capture_default_str();
  app.add_option("--down-seconds", o.down_seconds,
                 "how long the down endpoint refuses connections from a run's start")
      ->capture_default_str();
  app.add_flag("--skip-down", o.skip_down, "only the first measurement");
  app.add_option("--cache-max-bytes", o.cache_max_bytes, "the instance's --cache-max-bytes")
      ->capture_default_str();
  app.add_option("--runs", o.runs, "runs of each measurement (medians are printed)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (o.endpoints < 1 || o.endpoints > 32 || o.events < 1 || o.runs < 1)
    Die("--endpoints must be 1..32, --events and --runs at least 1");
  ::signal(SIGPIPE, SIG_IGN);

  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("cm-bench-webhooks-" + std::to_string(::getpid()));
  std::printf(
      "webhooks: %d events x %d endpoints per run, %d enqueueing clients, "
      "--webhook-concurrency %d, --webhook-endpoint-concurrency %d, wrk -t2 -c%d -d%ds, "
      "down endpoint refuses connections for %d s, %d runs, --cache-max-bytes %s\n",
      o.events, o.endpoints, o.clients, o.concurrency, o.endpoint_concurrency, o.concurrency,
      o.wrk_seconds, o.down_seconds, o.runs, o.cache_max_bytes.c_str());
  std::fflush(stdout);
  Sink sink(std::max(o.sink_threads, o.concurrency + 32));
  int status = 0;
  {
    Instance in(o, dir);
    Say("bench: cmstream on port %d, log %s; sink on port %d\n", in.port(), in.log().c_str(),
        sink.port());
    int next_path = 0;
    Table table({{"deliveries/s", "%.0f"},
                 {"wrk req/s", "%.0f"},
                 {"ratio", "%.3f"},
                 {"enqueue s", "%.1f"},
                 {"sink all s", "%.1f"},
                 {"applied all s", "%.1f"},
                 {"events/s in", "%.0f"},
                 {"failed attempts", "%.0f"},
                 {"direct deliveries/s", "%.0f"},
                 {"direct ratio", "%.3f"},
                 {"direct failed", "%.0f"},
                 {"with down: deliveries/s", "%.0f"},
                 {"with down / without", "%.3f"}});
    for (int run = 1; run <= o.runs; ++run) {
      Say("bench: run %d: deliveries\n", run);
      RunResult r = Deliver(o, in, sink, next_path, "bench-org-" + std::to_string(run), nullptr);
      auto sample = sink.Sample();
      if (!sample) Die("the sink saw no signed delivery");
      Say("bench: run %d: wrk\n", run);
      const double wrk = Wrk(o, sink, *sample, dir);
      Say("bench: run %d: deliveries of events produced straight to Kafka\n", run);
      RunResult k =
          Deliver(o, in, sink, next_path, "bench-direct-" + std::to_string(run), nullptr, true);
      RunResult d;
      if (!o.skip_down) {
        Say("bench: run %d: deliveries with a down endpoint\n", run);
        DownSink down;
        d = Deliver(o, in, sink, next_path, "bench-down-" + std::to_string(run), &down);
      }
      table.Add(
          "run " + std::to_string(run),
          {r.Rate(), wrk, wrk > 0 ? r.Rate() / wrk : 0, r.enqueue_seconds, r.sink_seconds,
           r.total_seconds, r.enqueue_seconds > 0 ? o.events / r.enqueue_seconds : 0,
           static_cast<double>(r.Failed()), k.Rate(), wrk > 0 ? k.Rate() / wrk : 0,
           static_cast<double>(k.Failed()), d.Rate(), r.Rate() > 0 ? d.Rate() / r.Rate() : 0});
    }
    table.AddMedian();
    table.Print(stdout);
    std::printf(
        "deliveries/s = %d x %d deliveries / (first enqueue until the sink had all and "
        "GET /v1/webhooks/{id} stats.successfulDeliveries counted all); wrk posts one captured "
        "delivery's body and headers to the same sink; ratio = deliveries/s / wrk req/s; direct: "
        "the events produced straight into "
        "cloudmatrix.events, not over HTTP (the delivery path alone); with down: one more endpoint "
        "that refuses connections (the healthy endpoints' deliveries/s over the first figure)\n",
        o.events, o.endpoints);
    std::printf("goal: ratio >= 0.5; a down endpoint does not slow the healthy ones\n");
  }
  std::filesystem::remove_all(dir);
  return status;
}
