// bench_usage: the usage application (processors/usage) on one stream thread against a plain
// consumer of the same topic, and the latency of its two hot queries over loopback HTTP.
//
// One process hosts the embedded broker and loads --events usage events (JSON, the seeds'
// UsageEvent shape) over --orgs organizations into cloudmatrix.events: a mix of api.call,
// document.created, storage.upload/delete, presence.joined and compute.used from 20 users per
// organization, event times spread over the last 24 hours. Then per run:
//   raw:   a plain librdkafka consumer reads the topic from the beginning, touching every record;
//   usage: a fresh KafkaStreams (1 thread, exactly_once) runs the usage topology until the
//          commit log seals every event (bench_common.h ReadSealTimeline);
//          steady = events after the first seal / (first seal to done); ratio = steady / raw.
// After the last run, the HTTP routes of the usage application are served on loopback and a
// keep-alive client measures, sequentially, GET .../quota/check (checkQuota) and GET
// .../metrics?granularity=hour over one day (getAggregatedMetrics), over random organizations.
// Correctness: every event processed, no DLQ record, and the `events` metric summed over every
// organization (day granularity) equals the number of events loaded.
// Last, the engine's own peak RSS (issue 12's bound): `cmstream run --topology cloudmatrix` as a
// child process against `cmstream broker` in another, loaded with the same events, read from
// /proc/<pid>/status (VmHWM) once the application's group offsets cover every event
// (--skip-engine-rss leaves it out).
#include <httplib.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ops/bench/bench_common.h"
#include "ops/bench/cmstream_process.h"
#include "processors/auth/auth_application.h"
#include "processors/usage/usage_routes.h"
#include "processors/usage/usage_topology.h"
#include "topology/application/stream_application.h"
#include "topology/common/units.h"
#include "topology/query/command_sender.h"
#include "topology/query/http_server.h"
#include "topology/query/query_router.h"
#include "topology/query/streams_metadata.h"
#include "topology/runtime/kafka_streams.h"

namespace {

using namespace cm::bench;
using cm::topology::KafkaStreams;
using cm::topology::StreamsConfig;
using nlohmann::json;

// The admin API key the bench queries with (CM_ADMIN_KEY of `cmstream run`).
constexpr const char* kAdminKey = "cmk_b0b0b0b0b0b0b0b0_YmVuY2gtYWRtaW4ta2V5LWZvci1jbXN0";
constexpr int64_t kHour = 3'600'000;
constexpr int64_t kDay = 24 * kHour;

struct Options {
  uint64_t events = 1'000'000;
  int orgs = 1'000;
  // The embedded broker keeps at most 5 MiB and 100,000 records per partition: 1,000,000
  // events need 256 partitions to keep their input and their changelogs whole.
  int partitions = 256;
  int runs = 3;
  int requests = 20'000;
  uint64_t rocksdb_memory = 256ULL << 20;  // as `cmstream run`'s default
  uint64_t cache_max_bytes = 64ULL << 20;  // likewise
  std::string log_file;
  std::string work_dir;
  bool timeline = false;
  std::string cmstream = CM_BINARY_DIR "/cmstream";
  bool engine_rss = true;
  bool engine_rss_only = false;
};

std::string OrgName(int o) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "org-%04d", o);
  return buf;
}

// Resident set sizes of this process: now and the peak since the last ResetPeakRss (Linux
// clear_refs "5").
struct Rss {
  double current_mib = 0, peak_mib = 0;
};
Rss ReadRss() {
  return {ProcessMemoryMib(::getpid(), "VmRSS"), ProcessMemoryMib(::getpid(), "VmHWM")};
}
void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

struct StreamsRun {
  double total_rate = 0, steady_rate = 0, done_s = 0;
  double rss_before_mib = 0, rss_peak_mib = 0;
  uint64_t processed = 0, dlq = 0, commits = 0;
  double commit_seconds = 0;
  uint64_t cache_hits = 0, cache_misses = 0;
  double HitRatio() const {
    const uint64_t reads = cache_hits + cache_misses;
    return reads ? static_cast<double>(cache_hits) / reads : 0;
  }
};

class UsageBench {
 public:
  explicit UsageBench(Options o) : o_(std::move(o)) {}

  int Main() {
    std::filesystem::create_directories(o_.work_dir);
    LogCapture capture(o_.log_file);
    capture_ = &capture;
    if (o_.engine_rss_only) {
      capture.Mark("engine RSS");
      const bool within = PrintEngineRss(MeasureEngineRss());
      std::filesystem::remove_all(o_.work_dir);
      capture_ = nullptr;
      return within ? 0 : 1;
    }
    StartBroker({{"cloudmatrix.events", o_.partitions},
                 {"cloudmatrix.commands", o_.partitions},
                 {"cloudmatrix.quota-alerts", o_.partitions},
                 {"cloudmatrix.dlq", o_.partitions}},
                broker_, admin_, bootstrap_);
    Load(bootstrap_);

    Table table({{"raw ev/s", "%.0f"},
                 {"no-stall ev/s", "%.0f"},
                 {"usage total ev/s", "%.0f"},
                 {"usage steady ev/s", "%.0f"},
                 {"ratio steady/no-stall", "%.3f"},
                 {"done s", "%.2f"},
                 {"RSS before MiB", "%.0f"},
                 {"peak RSS MiB", "%.0f"}});
    bool ok = true;
    std::unique_ptr<Running> last;
    for (int r = 1; r <= o_.runs; ++r) {
      capture.Mark("run " + std::to_string(r));
      last.reset();  // one application at a time
      ConsumeStats raw = ConsumeAll(bootstrap_, {{"cloudmatrix.events", o_.partitions}},
                                    "bench-usage-raw-" + std::to_string(r));
      if (raw.records != o_.events)
        Die("raw consumer read " + std::to_string(raw.records) + " records");
      ConsumeStats nostall =
          ConsumeAll(bootstrap_, {{"cloudmatrix.events", o_.partitions}},
                     "bench-usage-nostall-" + std::to_string(r), nullptr, kNoStallConsumer);
      if (nostall.records != o_.events)
        Die("no-stall consumer read " + std::to_string(nostall.records) + " records");
      StreamsRun s;
      ResetPeakRss();
      s.rss_before_mib = ReadRss().current_mib;
      last = RunStreams(r, s);
      s.rss_peak_mib = ReadRss().peak_mib;
      std::string check = Verify(*last, s);
      ok = ok && check.empty();
      Say("run %d: raw %.0f ev/s, no-stall %.0f ev/s | usage total %.0f ev/s, steady %.0f ev/s, "
          "done %.2f s | %llu commits, mean %.1f ms | cache hits %.1f%% | RSS %.0f MiB before, "
          "peak %.0f MiB | %s\n",
          r, raw.Rate(), nostall.Rate(), s.total_rate, s.steady_rate, s.done_s,
          static_cast<unsigned long long>(s.commits),
          s.commits ? 1000 * s.commit_seconds / s.commits : 0.0, 100 * s.HitRatio(),
          s.rss_before_mib, s.rss_peak_mib, check.empty() ? "verified" : check.c_str());
      table.Add("run " + std::to_string(r),
                {raw.Rate(), nostall.Rate(), s.total_rate, s.steady_rate,
                 nostall.Rate() > 0 ? s.steady_rate / nostall.Rate() : 0, s.done_s,
                 s.rss_before_mib, s.rss_peak_mib});
    }
    table.AddMedian();

    Latency quota, metrics;
    MeasureLatency(*last, quota, metrics);
    last.reset();
    EngineRss engine;
    if (o_.engine_rss) {
      capture.Mark("engine RSS");
      engine = MeasureEngineRss();
    }

    std::printf(
        "\ncmstream usage benchmark: usage topology, exactly_once, 1 stream thread, embedded "
        "broker\n");
    std::printf(
        "events %llu, organizations %d, partitions %d, runs %d, rocksdb memory %llu MiB, "
        "record cache %llu MiB\n\n",
        static_cast<unsigned long long>(o_.events), o_.orgs, o_.partitions, o_.runs,
        static_cast<unsigned long long>(o_.rocksdb_memory >> 20),
        static_cast<unsigned long long>(o_.cache_max_bytes >> 20));
    table.Print(stdout);
    std::printf(
        "\nquery latency over loopback HTTP (one keep-alive client, %d requests each, last run's "
        "state):\n",
        o_.requests);
    std::printf(
        "  checkQuota            GET /v1/usage/orgs/{org}/quota/check   p50 %7.3f ms  p99 %7.3f "
        "ms\n",
        quota.p50_ms, quota.p99_ms);
    std::printf(
        "  getAggregatedMetrics  GET .../metrics granularity=hour, 1 day p50 %7.3f ms  p99 %7.3f "
        "ms\n",
        metrics.p50_ms, metrics.p99_ms);
    std::printf(
        "\nraw      = plain consumer (librdkafka defaults) of cloudmatrix.events, first to last "
        "record\n"
        "no-stall = the same with queued.min.messages=10000000 (librdkafka 2.0.2 pauses fetching "
        "~1 s\n           whenever 100,000 messages are queued; the engine's consumer queues "
        "up to 1,000,000\n           or 16 MiB, so this baseline is at least as well tuned)\n"
        "steady   = events after the first commit / (first commit to the commit sealing the last "
        "event)\n"
        "RSS      = this process's resident set before the run and its peak during it (cleared "
        "before it):\n           the engine, and the in-process embedded broker, which keeps in "
        "memory every changelog\n           record the run writes (about 20 per event): an upper "
        "bound of the engine's own\n"
        "goals (issue 12): ratio steady/no-stall >= 0.15 (stretch 0.4); checkQuota p99 < 1 ms\n");
    if (o_.engine_rss) PrintEngineRss(engine);
    std::printf(
        "correctness: %s; engine log: %s (%llu errors, %llu warnings)\n",
        ok ? "every run verified (events metric summed over all organizations == events loaded)"
           : "FAILED, see above",
        o_.log_file.c_str(), static_cast<unsigned long long>(capture.errors()),
        static_cast<unsigned long long>(capture.warnings()));
    std::fflush(stdout);
    admin_.reset();
    broker_.reset();  // while stderr is still captured
    std::filesystem::remove_all(o_.work_dir);
    capture_ = nullptr;
    return ok ? 0 : 1;
  }

 private:
  // One usage application with its HTTP routes, kept after its run for the queries.
  struct Running {
    std::unique_ptr<cm::topology::Topology> topology;
    std::unique_ptr<KafkaStreams> streams;
    std::unique_ptr<cm::topology::StreamsMetadata> metadata;
    std::unique_ptr<cm::topology::QueryRouter> router;
    std::unique_ptr<cm::topology::CommandSender> sender;
    cm::topology::HttpServer server;
    ~Running() {
      server.Stop();
      if (metadata) metadata->Stop();
      sender.reset();
      if (streams) streams->Stop();
    }
  };

  void Load(const std::string& bootstrap) {
    static const char* kTypes[] = {
        "api.call",       "api.call",       "api.call",        "api.call",     "document.created",
        "storage.upload", "storage.delete", "presence.joined", "compute.used", "api.call"};
    static const char* kResourceTypes[] = {"document", "file", "endpoint", "job"};
    Loader loader(bootstrap);
    std::mt19937_64 rng(42);
    now_ = cm::topology::WallClockMs();
    auto t0 = Clock::now();
    for (uint64_t i = 0; i < o_.events; ++i) {
      int org = static_cast<int>(rng() % static_cast<uint64_t>(o_.orgs));
      const char* type = kTypes[rng() % 10];
      json e = {
          {"eventId", "ev-" + std::to_string(i)},
          {"organizationId", OrgName(org)},
          {"userId", "user-" + std::to_string(rng() % 20)},
          {"eventType", type},
          {"resourceId", "res-" + std::to_string(rng() % 50)},
          {"resourceType", kResourceTypes[rng() % 4]},
          {"timestamp", now_ - static_cast<int64_t>(rng() % static_cast<uint64_t>(kDay - kHour))}};
      if (std::string_view(type).starts_with("storage") ||
          std::string_view(type) == "compute.used") {
        e["quantity"] = static_cast<double>(rng() % 1000);
      }
      loader.Send("cloudmatrix.events", OrgName(org), e.dump(), now_);
      if (i % 1024 == 0) loader.Poll();
    }
    loader.Flush();
    RequireNothingDropped(bootstrap, "cloudmatrix.events", o_.partitions);
    Say("loaded %llu events into cloudmatrix.events (%d partitions) in %.2f s\n",
        static_cast<unsigned long long>(o_.events), o_.partitions, Seconds(Clock::now() - t0));
  }

  struct EngineRss {
    double seconds = 0, idle_mib = 0, peak_mib = 0;
  };

  // Whether the peak is within issue 12's bound.
  bool PrintEngineRss(const EngineRss& engine) const {
    const double bound = static_cast<double>((o_.rocksdb_memory + o_.cache_max_bytes) >> 20) + 300;
    std::printf(
        "\nengine alone: `cmstream run --topology cloudmatrix --threads 1` in its own process "
        "against\n`cmstream broker` in another, %d partitions, rocksdb memory %llu MiB, record "
        "cache %llu MiB:\n%.0f MiB resident with its tasks open and no event yet; the same %llu "
        "events, load start\nto last commit %.1f s (%.0f ev/s), peak RSS %.0f MiB;\nbound (issue "
        "12) --rocksdb-memory + --cache-max-bytes + 300 MiB = %.0f MiB: %s\n",
        o_.partitions, static_cast<unsigned long long>(o_.rocksdb_memory >> 20),
        static_cast<unsigned long long>(o_.cache_max_bytes >> 20), engine.idle_mib,
        static_cast<unsigned long long>(o_.events), engine.seconds,
        engine.seconds > 0 ? o_.events / engine.seconds : 0.0, engine.peak_mib, bound,
        engine.peak_mib < bound ? "within" : "OVER");
    std::fflush(stdout);
    return engine.peak_mib < bound;
  }

  // The resident set of the engine without the broker, which keeps every record in memory:
  // `cmstream run` as a child process against `cmstream broker` in another, loaded with the
  // same events once its tasks are open; done when the application's group offsets cover them.
  EngineRss MeasureEngineRss() {
    const std::filesystem::path dir = o_.work_dir + "/engine-rss";
    std::filesystem::create_directories(dir);
    const std::string parts = ":" + std::to_string(o_.partitions);
    BrokerProcess broker(o_.cmstream, dir,
                         {"cloudmatrix.events" + parts, "cloudmatrix.commands" + parts,
                          "cloudmatrix.quota-alerts" + parts, "cloudmatrix.dlq" + parts});
    // Neither a RabbitMQ bridge nor Postgres snapshots: the figure is the stream engine's.
    ::unsetenv("RABBITMQ_URL");
    ::unsetenv("DATABASE_URL");
    const std::string app = "bench-usage-rss";
    CmstreamProcess run(o_.cmstream, dir,
                        {"--topology", "cloudmatrix", "--app-id", app, "--threads", "1",
                         "--rocksdb-memory", std::to_string(o_.rocksdb_memory), "--cache-max-bytes",
                         std::to_string(o_.cache_max_bytes)},
                        {"--brokers", broker.bootstrap(), "--broker-admin", broker.admin()});
    EngineRss out;
    out.idle_mib = ProcessMemoryMib(run.pid(), "VmRSS");  // ready: every task open, no event yet
    const auto started = Clock::now();
    Load(broker.bootstrap());
    // Group offsets follow each sealed commit (they are there for lag monitoring).
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    Set(conf, "bootstrap.servers", broker.bootstrap());
    Set(conf, "group.id", app);
    auto consumer = NewClient(RD_KAFKA_CONSUMER, conf);
    auto list = cm::topology::NewPartitionList();
    for (int p = 0; p < o_.partitions; ++p)
      rd_kafka_topic_partition_list_add(list.get(), "cloudmatrix.events", p);
    for (;;) {
      if (Clock::now() - started > std::chrono::minutes(30))
        Die("cmstream run did not finish within 30 minutes; see " + run.log());
      if (::waitpid(run.pid(), nullptr, WNOHANG) != 0) Die("cmstream run exited; see " + run.log());
      std::this_thread::sleep_for(std::chrono::seconds(1));
      if (rd_kafka_committed(consumer.get(), list.get(), 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        continue;
      uint64_t committed = 0;
      for (int i = 0; i < list->cnt; ++i)
        if (list->elems[i].offset > 0) committed += static_cast<uint64_t>(list->elems[i].offset);
      if (committed >= o_.events) break;
    }
    out.seconds = Seconds(Clock::now() - started);
    out.peak_mib = ProcessMemoryMib(run.pid(), "VmHWM");
    Say("engine alone: %.0f MiB with its tasks open, %llu events in %.1f s, peak RSS %.0f MiB\n",
        out.idle_mib, static_cast<unsigned long long>(o_.events), out.seconds, out.peak_mib);
    return out;
  }

  std::unique_ptr<Running> RunStreams(int run, StreamsRun& out) {
    auto running = std::make_unique<Running>();
    const std::string app = "bench-usage-run" + std::to_string(run);
    cm::topology::TopologyBuilder builder;
    // As in `cmstream run`: the API keys every query is checked against.
    if (auto s = cm::auth::AuthApplication().AddTo(builder); !s.ok()) Die(s.ToString());
    if (auto s = cm::usage::AddUsageTopology(builder); !s.ok()) Die(s.ToString());
    auto topology = builder.Build(app);
    if (!topology.ok()) Die("topology: " + topology.status().ToString());
    running->topology = std::make_unique<cm::topology::Topology>(std::move(topology).value());

    StreamsConfig config;
    config.application_id = app;
    config.instance_id = "bench";
    config.bootstrap_servers = bootstrap_;
    config.state_dir = o_.work_dir + "/state-run" + std::to_string(run);
    config.threads = 1;
    config.rocksdb_memory_bytes = o_.rocksdb_memory;
    config.cache_max_bytes = o_.cache_max_bytes;
    config.broker_filters_aborted = false;  // the embedded broker
    std::filesystem::remove_all(config.state_dir);
    running->streams = std::make_unique<KafkaStreams>(*running->topology, config, *admin_);
    const auto t_start = Clock::now();
    const int64_t wall_start = cm::topology::WallClockMs();
    if (auto s = running->streams->Start(); !s.ok()) Die("KafkaStreams::Start: " + s.ToString());
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      uint64_t processed = 0;
      for (const auto& t : running->streams->Threads()) {
        if (!t.alive) Die("stream thread failed: " + t.error);
        processed += t.processed;
      }
      if (processed >= o_.events) break;
      if (Clock::now() - t_start > std::chrono::minutes(20))
        Die("usage processed only " + std::to_string(processed));
    }
    SealTimeline seals =
        ReadSealTimeline(bootstrap_, app, "cloudmatrix.events", o_.partitions, o_.events,
                         wall_start, o_.timeline, "bench-usage-seals-" + std::to_string(run));
    out.done_s = (seals.done_ms - wall_start) / 1000.0;
    out.total_rate = o_.events / out.done_s;
    out.steady_rate =
        seals.done_ms > seals.first_ms
            ? (o_.events - seals.first_records) / ((seals.done_ms - seals.first_ms) / 1000.0)
            : 0;
    for (const auto& t : running->streams->Threads()) {
      out.processed += t.processed;
      out.commits += t.commits;
      out.commit_seconds += t.commit_seconds_sum;
      out.cache_hits += t.cache.hits;
      out.cache_misses += t.cache.misses;
    }

    int port = 0;
    running->metadata = std::make_unique<cm::topology::StreamsMetadata>(
        cm::topology::StreamsMetadata::Options{.bootstrap_servers = bootstrap_,
                                               .topic = KafkaStreams::InstancesTopic(app),
                                               .instance_id = config.instance_id,
                                               .endpoint = ""},
        [s = running->streams.get()] { return s->RunningTasks(); });
    running->router =
        std::make_unique<cm::topology::QueryRouter>(*running->streams, *running->metadata);
    running->sender = std::make_unique<cm::topology::CommandSender>(*running->streams, bootstrap_);
    cm::topology::RouteContext context{running->server, *running->streams, *running->router,
                                       *running->sender};
    cm::auth::AuthApplication().AddRoutes(context);
    cm::usage::AddUsageRoutes(running->server, *running->streams, *running->router,
                              *running->sender);
    if (auto s = cm::auth::EnsureAdminKey(*running->streams, *running->sender, kAdminKey,
                                          cm::topology::WallClockMs(), std::chrono::seconds(30));
        !s.ok())
      Die("admin key: " + s.ToString());
    if (auto s = running->server.Start("127.0.0.1", port); !s.ok()) Die("http: " + s.ToString());
    return running;
  }

  // The events metric summed over every organization equals the events loaded; no DLQ record.
  std::string Verify(Running& running, StreamsRun& s) {
    if (s.processed != o_.events) return "processed " + std::to_string(s.processed);
    httplib::Client client("127.0.0.1", running.server.port());
    client.set_bearer_token_auth(kAdminKey);
    client.set_read_timeout(30, 0);
    int64_t day = now_ / kDay * kDay;
    double sum = 0;
    for (int o = 0; o < o_.orgs; ++o) {
      auto r = client.Get("/v1/usage/orgs/" + OrgName(o) +
                          "/metrics?granularity=day&metricTypes=events&startTime=" +
                          std::to_string(day - kDay) + "&endTime=" + std::to_string(day + kDay));
      if (!r || r->status != 200)
        return "metrics of " + OrgName(o) + " failed" + (r ? ": " + r->body : "");
      sum += json::parse(r->body)["totals"].value("events", 0.0);
    }
    auto dlq = QueryWatermarks(bootstrap_, "cloudmatrix.dlq", o_.partitions);
    s.dlq = static_cast<uint64_t>(dlq.TotalHigh());
    if (s.dlq != 0) return std::to_string(s.dlq) + " records in the DLQ";
    if (static_cast<uint64_t>(sum) != o_.events)
      return "events metric sums to " + std::to_string(sum);
    return "";
  }

  void MeasureLatency(Running& running, Latency& quota, Latency& metrics) {
    httplib::Client client("127.0.0.1", running.server.port());
    client.set_bearer_token_auth(kAdminKey);
    client.set_keep_alive(true);
    client.set_tcp_nodelay(true);
    client.set_read_timeout(30, 0);
    std::mt19937_64 rng(7);
    int64_t day = now_ / kDay * kDay;
    auto time = [&](const std::string& path) {
      auto t0 = Clock::now();
      auto r = client.Get(path);
      double ms = Seconds(Clock::now() - t0) * 1000;
      if (!r || r->status != 200) Die("GET " + path + " failed" + (r ? ": " + r->body : ""));
      return ms;
    };
    std::vector<double> q, m;
    for (int i = 0; i < o_.requests; ++i) {
      std::string org = OrgName(static_cast<int>(rng() % static_cast<uint64_t>(o_.orgs)));
      q.push_back(time("/v1/usage/orgs/" + org + "/quota/check?metricType=api_calls&amount=1"));
    }
    for (int i = 0; i < o_.requests; ++i) {
      std::string org = OrgName(static_cast<int>(rng() % static_cast<uint64_t>(o_.orgs)));
      m.push_back(time("/v1/usage/orgs/" + org + "/metrics?granularity=hour&startTime=" +
                       std::to_string(day - kDay) + "&endTime=" + std::to_string(day)));
    }
    quota = Percentiles(std::move(q));
    metrics = Percentiles(std::move(m));
  }

  Options o_;
  LogCapture* capture_ = nullptr;
  std::unique_ptr<cm::topology::EmbeddedBroker> broker_;
  std::unique_ptr<cm::topology::TopicAdmin> admin_;
  std::string bootstrap_;
  int64_t now_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{
      "cmstream usage benchmark: usage topology vs a plain consumer; checkQuota and metrics "
      "latency"};
  app.add_option("--events", o.events, "usage events to load and process")->capture_default_str();
  app.add_option("--orgs", o.orgs, "organizations")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  app.add_option("--partitions", o.partitions, "partitions of cloudmatrix.events")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--runs", o.runs, "runs; the table shows each and the median")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--requests", o.requests, "HTTP requests per query kind")
      ->check(CLI::Range(100, 10'000'000))
      ->capture_default_str();
  app.add_option("--log", o.log_file, "where the engine's log lines go (default <work-dir>.log)");
  app.add_option("--work-dir", o.work_dir,
                 "state directories (default /tmp/cmstream-bench-usage-<pid>)");
  std::string rocksdb_memory = "256MiB";
  app.add_option("--rocksdb-memory", rocksdb_memory,
                 "block cache plus write buffers, as `cmstream run --rocksdb-memory`")
      ->capture_default_str();
  std::string cache_max_bytes = "64MiB";
  app.add_option("--cache-max-bytes", cache_max_bytes,
                 "the stream thread's record cache, as `cmstream run --cache-max-bytes`")
      ->capture_default_str();
  app.add_flag("--timeline", o.timeline, "print every sealed commit");
  app.add_option("--cmstream", o.cmstream, "the cmstream binary (for the engine's RSS)")
      ->capture_default_str();
  app.add_flag("!--skip-engine-rss", o.engine_rss,
               "skip running `cmstream run` apart from the broker to measure its peak RSS");
  app.add_flag("--engine-rss-only", o.engine_rss_only,
               "measure only that: no in-process runs, no query latencies");
  CLI11_PARSE(app, argc, argv);
  auto memory = cm::topology::ParseBytes(rocksdb_memory);
  if (!memory.ok()) {
    std::fprintf(stderr, "--rocksdb-memory: %s\n", memory.status().ToString().c_str());
    return 2;
  }
  o.rocksdb_memory = *memory;
  auto cache = cm::topology::ParseBytes(cache_max_bytes);
  if (!cache.ok()) {
    std::fprintf(stderr, "--cache-max-bytes: %s\n", cache.status().ToString().c_str());
    return 2;
  }
  o.cache_max_bytes = *cache;
  if (o.work_dir.empty()) o.work_dir = "/tmp/cmstream-bench-usage-" + std::to_string(getpid());
  if (o.log_file.empty()) o.log_file = o.work_dir + ".log";
  return UsageBench(o).Main();
}
