// HTTP under overload (issue 14): /health and checkQuota latency of one `cmstream run
// --embedded` while 500 clients hold slow connections (half-sent headers, reconnecting when
// cut off) and 200 clients send plan commands, against the same figures on the idle instance,
// in one run. Goals: /health p99 under 100 ms, checkQuota p99 under 5 ms.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "bench_common.h"
#include "cmstream_process.h"

using namespace cm::bench;

extern char** environ;

namespace {

struct Options {
  std::string cmstream = CM_BINARY_DIR "/cmstream";
  int slow = 500;
  int senders = 200;
  int probes = 1000;
  int runs = 3;
};

int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// `cmstream run --embedded` as a child process, killed at the end.
class Instance : public CmstreamProcess {
 public:
  Instance(const Options& o, const std::filesystem::path& dir)
      : CmstreamProcess(o.cmstream, Fresh(dir), {}) {}

 private:
  static const std::filesystem::path& Fresh(const std::filesystem::path& dir) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
  }
};

// /health and checkQuota, one after the other on one keep-alive connection each.
std::pair<Latency, Latency> Probe(int port, const std::string& key, int probes) {
  httplib::Client health("127.0.0.1", port), quota("127.0.0.1", port);
  quota.set_bearer_token_auth(key);
  for (auto* c : {&health, &quota}) {
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);
    c->set_read_timeout(30, 0);
  }
  std::vector<double> h, q;
  auto time = [](httplib::Client& c, const char* path) {
    auto start = Clock::now();
    auto r = c.Get(path);
    if (!r || r->status != 200) Die(std::string("probe failed: ") + path);
    return Seconds(Clock::now() - start) * 1000;
  };
  for (int i = 0; i < probes; ++i) {
    h.push_back(time(health, "/health"));
    q.push_back(time(quota, "/v1/usage/orgs/org-1/quota/check?metricType=api_calls&amount=1"));
  }
  return {Percentiles(std::move(h)), Percentiles(std::move(q))};
}

// The load: slow connections that reconnect when the server cuts them off, and command senders.
class Load {
 public:
  Load(const Options& o, int port, std::string key) : port_(port), key_(std::move(key)) {
    for (int i = 0; i < o.slow; ++i) slow_.push_back(-1);
    slow_thread_ = std::thread([this] { HoldSlow(); });
    for (int i = 0; i < o.senders; ++i) senders_.emplace_back([this, i] { Send(i); });
    auto until = Clock::now() + std::chrono::seconds(60);
    while (commands_.load() < static_cast<uint64_t>(o.senders) && Clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ~Load() {
    stop_ = true;
    slow_thread_.join();
    for (auto& t : senders_) t.join();
    for (int fd : slow_)
      if (fd >= 0) ::close(fd);
  }
  uint64_t commands() const { return commands_.load(); }
  uint64_t failed() const { return failed_.load(); }
  uint64_t reconnects() const { return reconnects_.load(); }

 private:
  void HoldSlow() {
    static const std::string kHead =
        "GET /v1/usage/orgs/org-1/quota/check?metricType=api_calls&amount=1 HTTP/1.1\r\n"
        "Host: x\r\nAuthorization: Bearer x\r\nX-Slow: ";
    while (!stop_.load()) {
      for (int& fd : slow_) {
        // One more byte per round; a connection the server closed (408) is opened again.
        if (fd >= 0 && ::send(fd, "a", 1, MSG_NOSIGNAL) != 1) {
          ::close(fd);
          fd = -1;
          reconnects_.fetch_add(1);
        }
        if (fd < 0) {
          fd = Connect(port_);
          if (fd >= 0) ::send(fd, kHead.data(), kHead.size(), MSG_NOSIGNAL);
        }
      }
      for (int i = 0; i < 10 && !stop_.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  void Send(int i) {
    httplib::Client c("127.0.0.1", port_);
    c.set_bearer_token_auth(key_);
    c.set_keep_alive(true);
    c.set_read_timeout(30, 0);
    std::string path = "/v1/usage/orgs/org-" + std::to_string(i) + "/plan";
    std::string body = nlohmann::json{{"plan", i % 2 ? "pro" : "free"}}.dump();
    while (!stop_.load()) {
      auto r = c.Put(path, body, "application/json");
      (r && r->status < 300 ? commands_ : failed_).fetch_add(1);
    }
  }

  int port_;
  std::string key_;
  std::atomic<bool> stop_{false};
  std::vector<int> slow_;
  std::thread slow_thread_;
  std::vector<std::thread> senders_;
  std::atomic<uint64_t> commands_{0}, failed_{0}, reconnects_{0};
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"HTTP /health and checkQuota latency: idle against 500 slow + 200 busy clients"};
  app.add_option("--cmstream", o.cmstream, "the cmstream binary")->capture_default_str();
  app.add_option("--slow", o.slow, "slow connections")->capture_default_str();
  app.add_option("--senders", o.senders, "clients sending plan commands")->capture_default_str();
  app.add_option("--probes", o.probes, "probes of each route per phase")->capture_default_str();
  app.add_option("--runs", o.runs, "runs (medians are printed)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  std::printf("%d slow connections, %d command senders, %d probes per route and phase\n", o.slow,
              o.senders, o.probes);
  Table table({{"idle /health p50 ms", "%.3f"},
               {"idle /health p99 ms", "%.3f"},
               {"idle quota p99 ms", "%.3f"},
               {"loaded /health p50 ms", "%.3f"},
               {"loaded /health p99 ms", "%.3f"},
               {"loaded quota p50 ms", "%.3f"},
               {"loaded quota p99 ms", "%.3f"},
               {"commands/s", "%.0f"},
               {"failed", "%.0f"}});
  for (int run = 1; run <= o.runs; ++run) {
    Instance instance(o, std::filesystem::temp_directory_path() / "cm-bench-overload");
    auto [idle_health, idle_quota] = Probe(instance.port(), instance.key(), o.probes);
    Load load(o, instance.port(), instance.key());
    uint64_t before = load.commands();
    auto start = Clock::now();
    auto [loaded_health, loaded_quota] = Probe(instance.port(), instance.key(), o.probes);
    double rate = static_cast<double>(load.commands() - before) / Seconds(Clock::now() - start);
    table.Add("run " + std::to_string(run),
              {idle_health.p50_ms, idle_health.p99_ms, idle_quota.p99_ms, loaded_health.p50_ms,
               loaded_health.p99_ms, loaded_quota.p50_ms, loaded_quota.p99_ms, rate,
               static_cast<double>(load.failed())});
  }
  table.AddMedian();
  table.Print(stdout);
  std::printf("goal: loaded /health p99 < 100 ms, loaded checkQuota p99 < 5 ms\n");
  return 0;
}
