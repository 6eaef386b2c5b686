// bench_pipeline: end-to-end throughput of the counting topology against a plain consumer.
//
// One process hosts the embedded broker (the clients still talk TCP to it), loads
// --records small records (key = one of --keys keys, value --value-bytes bytes) into
// `count-input`, then per run:
//   (a) raw: a plain librdkafka consumer reads every partition from the beginning, touching
//       key and value; timed from its first to its last record;
//   (b) cmstream: a KafkaStreams instance (one thread, exactly_once, fresh app id and state
//       dir) runs the counting topology over the same topic until it processed every record.
//
// Timing of (b). ThreadStatus is refreshed only every 500 ms (stream_thread.cpp, Run), too
// coarse to time a few seconds of work, so the end is read back from the commit log instead:
// every sealed commit record carries its wall-clock time and the input offsets it covers, so
// "done" is the seal whose inputs reach the end of count-input (the records are then processed
// AND committed). The commit log also holds outbox records and "published" marks (cm-type
// header); only seals are read. Figures:
//   total   = records / (done - Start())           includes group join (the embedded broker's
//                                                   coordinator waits 3 s on a first join)
//   steady  = (records - records in first seal) / (done - first seal)
//   ratio   = steady / raw
// Correctness: the last count per key in the output topic equals the number of records the
// loader sent with that key, the output topic holds exactly --records records, and the
// processed counter equals --records.
//
// Experiment flags (not used by default; printed in the header when set):
// --producer-override, --consumer-override, --commit-interval-ms. They exist to measure the
// effect of configuration changes suggested for the engine.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ops/bench/bench_common.h"
#include "processors/counting/counting_topology.h"
#include "topology/kafka/embedded_broker.h"
#include "topology/kafka/topic_admin.h"
#include "topology/runtime/kafka_streams.h"

namespace {

using namespace cm::bench;
using cm::topology::KafkaStreams;
using cm::topology::StreamsConfig;

struct Options {
  uint64_t records = 1'000'000;
  int keys = 10'000;
  int value_bytes = 16;
  int partitions = 32;
  int runs = 3;
  int commit_interval_ms = 100;
  uint64_t cache_max_bytes = 64ULL << 20;  // StreamsConfig's default
  std::string log_file;
  std::string work_dir;
  bool keep_state = false;
  bool skip_raw = false;
  bool timeline = false;
  std::vector<std::string> producer_overrides, consumer_overrides;  // KEY=VALUE, for experiments
  std::vector<std::string> raw_overrides;                           // same, for the raw consumer
  bool raw_only = false;
  bool emit_per_commit = false;  // CountEmit::kLatestPerCommit
};

std::map<std::string, std::string> ParseOverrides(const std::vector<std::string>& items) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    auto eq = item.find('=');
    if (eq == std::string::npos) Die("expected KEY=VALUE, got " + item);
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string KeyName(int k) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "key-%05d", k);
  return buf;
}

std::string ValueOf(uint64_t i, int bytes) {
  std::string digits = std::to_string(i);
  if (static_cast<int>(digits.size()) >= bytes) return digits.substr(digits.size() - bytes);
  return "v" + std::string(bytes - 1 - digits.size(), '0') + digits;
}

struct StreamsRun {
  double total_rate = 0, steady_rate = 0;
  double startup_s = 0;      // Start() to the first task running (group join included)
  double first_seal_s = 0;   // Start() to the first sealed commit
  double done_s = 0;         // Start() to the seal that covers every record
  double status_done_s = 0;  // Start() to ThreadStatus showing every record (500 ms granularity)
  double cpu_s = 0;          // process CPU from Start() to ThreadStatus showing every record
  uint64_t processed = 0, produced = 0, commits = 0, aborted = 0;
  double commit_seconds = 0;
  uint64_t first_seal_records = 0;
  bool verified = false;
  std::string verify_note;
};

class PipelineBench {
 public:
  explicit PipelineBench(Options o) : o_(std::move(o)) {}

  int Main() {
    std::filesystem::create_directories(o_.work_dir);
    LogCapture capture(o_.log_file);
    capture_ = &capture;
    StartBroker({{"count-input", o_.partitions}}, broker_, admin_, bootstrap_);

    Load();

    Table table({{"raw rec/s", "%.0f"},
                 {"raw no-stall rec/s", "%.0f"},
                 {"cms total rec/s", "%.0f"},
                 {"cms steady rec/s", "%.0f"},
                 {"ratio steady/raw", "%.3f"},
                 {"ratio total/raw", "%.3f"},
                 {"ratio steady/no-stall", "%.3f"},
                 {"startup s", "%.2f"},
                 {"done s", "%.2f"}});
    bool all_ok = true;
    for (int r = 1; r <= o_.runs; ++r) {
      capture.Mark("run " + std::to_string(r) + " raw");
      ConsumeStats raw, nostall;
      if (!o_.skip_raw) {
        raw =
            ConsumeAll(bootstrap_, {{"count-input", o_.partitions}},
                       "bench-raw-" + std::to_string(r), nullptr, ParseOverrides(o_.raw_overrides));
        if (raw.records != o_.records) {
          Die("raw consumer read " + std::to_string(raw.records) + " records, expected " +
              std::to_string(o_.records));
        }
        nostall = ConsumeAll(bootstrap_, {{"count-input", o_.partitions}},
                             "bench-raw-nostall-" + std::to_string(r), nullptr, kNoStallConsumer);
      }
      if (o_.raw_only) {
        Say("run %d: raw %.0f rec/s (%.3f s, %.2f CPU s), no-stall %.0f rec/s\n", r, raw.Rate(),
            raw.seconds, raw.cpu_seconds, nostall.Rate());
        continue;
      }
      capture.Mark("run " + std::to_string(r) + " cmstream");
      StreamsRun s = RunStreams(r);
      all_ok = all_ok && s.verified;
      double raw_rate = raw.Rate();
      Say("run %d: raw %.0f rec/s (%.3f s, %.2f CPU s), no-stall %.0f rec/s | cmstream CPU %.2f s "
          "to status done | cmstream total %.0f rec/s, steady %.0f rec/s | "
          "startup %.2f s, first seal %.2f s (%llu rec), done %.2f s, status showed done at %.2f s "
          "| "
          "commits %llu (aborted %llu), mean commit %.1f ms, produced %llu | %s\n",
          r, raw_rate, raw.seconds, raw.cpu_seconds, nostall.Rate(), s.cpu_s, s.total_rate,
          s.steady_rate, s.startup_s, s.first_seal_s,
          static_cast<unsigned long long>(s.first_seal_records), s.done_s, s.status_done_s,
          static_cast<unsigned long long>(s.commits), static_cast<unsigned long long>(s.aborted),
          s.commits ? 1000 * s.commit_seconds / s.commits : 0.0,
          static_cast<unsigned long long>(s.produced), s.verify_note.c_str());
      table.Add(
          "run " + std::to_string(r),
          {raw_rate, nostall.Rate(), s.total_rate, s.steady_rate,
           raw_rate > 0 ? s.steady_rate / raw_rate : 0, raw_rate > 0 ? s.total_rate / raw_rate : 0,
           nostall.Rate() > 0 ? s.steady_rate / nostall.Rate() : 0, s.startup_s, s.done_s});
    }
    table.AddMedian();

    std::printf(
        "\ncmstream pipeline benchmark: counting topology, exactly_once, 1 stream thread, embedded "
        "broker\n");
    std::printf(
        "records %llu, keys %d, value %d B, partitions %d, commit interval %d ms, record cache "
        "%llu bytes, runs %d\n",
        static_cast<unsigned long long>(o_.records), o_.keys, o_.value_bytes, o_.partitions,
        o_.commit_interval_ms, static_cast<unsigned long long>(o_.cache_max_bytes), o_.runs);
    std::string experiments;
    for (const auto& p : o_.producer_overrides) experiments += " producer:" + p;
    for (const auto& c : o_.consumer_overrides) experiments += " consumer:" + c;
    for (const auto& c : o_.raw_overrides) experiments += " raw-consumer:" + c;
    std::printf("experiments:%s\n\n",
                experiments.empty() ? " none (engine defaults)" : experiments.c_str());
    table.Print(stdout);
    std::printf(
        "\nraw    = plain consumer (librdkafka defaults), first to last record\n"
        "no-stall = the same with queued.min.messages=10000000 (librdkafka 2.0.2 pauses fetching "
        "~1 s\n"
        "         whenever the queue passes 100,000 messages; reference only)\n"
        "total  = records / (KafkaStreams::Start() to the commit sealing the last record)\n"
        "steady = records after the first commit / (first commit to the commit sealing the last "
        "record)\n"
        "goal (issue): ratio steady/raw >= 0.5 and steady >= 200,000 rec/s on one thread\n");
    std::printf("correctness: %s; engine log: %s (%llu errors, %llu warnings)\n",
                all_ok ? "every run verified (last output count per key == records sent per key)"
                       : "FAILED, see above",
                o_.log_file.c_str(), static_cast<unsigned long long>(capture.errors()),
                static_cast<unsigned long long>(capture.warnings()));
    std::fflush(stdout);
    broker_.reset();  // while stderr is still captured
    if (!o_.keep_state) std::filesystem::remove_all(o_.work_dir);
    capture_ = nullptr;
    return all_ok ? 0 : 1;
  }

 private:
  void Load() {
    expected_.assign(static_cast<size_t>(o_.keys), 0);
    std::vector<std::string> keys;
    for (int k = 0; k < o_.keys; ++k) keys.push_back(KeyName(k));
    Loader loader(bootstrap_);
    auto t0 = Clock::now();
    int64_t ts = cm::topology::WallClockMs();
    for (uint64_t i = 0; i < o_.records; ++i) {
      int k = static_cast<int>(SplitMix(i) % static_cast<uint64_t>(o_.keys));
      ++expected_[static_cast<size_t>(k)];
      loader.Send("count-input", keys[static_cast<size_t>(k)], ValueOf(i, o_.value_bytes),
                  ts + static_cast<int64_t>(i / 1000));
      if (i % 1024 == 0) loader.Poll();
    }
    loader.Flush();
    double secs = Seconds(Clock::now() - t0);
    RequireNothingDropped(bootstrap_, "count-input", o_.partitions);
    int64_t high = QueryWatermarks(bootstrap_, "count-input", o_.partitions).TotalHigh();
    if (high != static_cast<int64_t>(o_.records))
      Die("count-input holds " + std::to_string(high) + " records");
    Say("loaded %llu records into count-input (%d partitions) in %.2f s (%.0f rec/s)\n",
        static_cast<unsigned long long>(o_.records), o_.partitions, secs, o_.records / secs);
  }

  StreamsRun RunStreams(int run) {
    StreamsRun out;
    const std::string app = "bench-pipeline-run" + std::to_string(run);
    cm::counting::CountingTopologyOptions topts;
    topts.output_topic = "count-output-run" + std::to_string(run);
    if (o_.emit_per_commit) topts.emit = cm::counting::CountEmit::kLatestPerCommit;
    cm::topology::TopologyBuilder builder;
    cm::counting::AddCountingTopology(builder, topts);
    auto topology = builder.Build(app);
    if (!topology.ok()) Die("topology: " + topology.status().ToString());

    StreamsConfig config;
    config.application_id = app;
    config.instance_id = "bench";
    config.bootstrap_servers = bootstrap_;
    config.state_dir = o_.work_dir + "/state-run" + std::to_string(run);
    config.threads = 1;
    config.guarantee = cm::topology::ProcessingGuarantee::kExactlyOnce;
    config.broker_filters_aborted = false;  // the embedded broker
    config.commit_interval = std::chrono::milliseconds(o_.commit_interval_ms);
    config.cache_max_bytes = o_.cache_max_bytes;
    config.producer_overrides = ParseOverrides(o_.producer_overrides);
    config.consumer_overrides = ParseOverrides(o_.consumer_overrides);
    std::filesystem::remove_all(config.state_dir);

    capture_->Clear();
    capture_->Watch({"task_running", "tasks_assigned", "stream_thread_failed", "commit_aborted"});
    KafkaStreams streams(*topology, config, *admin_);
    const auto t_start = Clock::now();
    const int64_t wall_start = cm::topology::WallClockMs();
    const double cpu_start = ProcessCpuSeconds();
    if (auto s = streams.Start(); !s.ok()) Die("KafkaStreams::Start: " + s.ToString());
    const auto give_up = t_start + std::chrono::minutes(15);
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      auto threads = streams.Threads();
      uint64_t processed = 0;
      for (const auto& t : threads) {
        if (!t.alive) Die("stream thread failed: " + t.error);
        processed += t.processed;
      }
      if (processed >= o_.records) {
        out.status_done_s = Seconds(Clock::now() - t_start);
        out.cpu_s = ProcessCpuSeconds() - cpu_start;
        break;
      }
      if (Clock::now() > give_up)
        Die("cmstream processed only " + std::to_string(processed) + " records in 15 minutes");
    }
    // Let the periodic commit seal the tail by itself, so Stop()'s final commit does not count;
    // then wait for a status refresh (every 500 ms) that reflects it. Threads() is empty after
    // Stop().
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * o_.commit_interval_ms + 700));
    for (const auto& t : streams.Threads()) {
      out.processed += t.processed;
      out.produced += t.produced;
      out.commits += t.commits;
      out.aborted += t.aborted_commits;
      out.commit_seconds += t.commit_seconds_sum;
    }
    streams.Stop();
    for (const auto& e : capture_->Events()) {
      if (e.event == "task_running") {
        out.startup_s = Seconds(e.at - t_start);
        break;
      }
    }

    SealTimeline seals =
        ReadSealTimeline(bootstrap_, app, "count-input", o_.partitions, o_.records, wall_start,
                         o_.timeline, "bench-seals-" + std::to_string(run));
    int64_t first_ms = seals.first_ms, done_ms = seals.done_ms;
    out.first_seal_records = seals.first_records;
    out.first_seal_s = (first_ms - wall_start) / 1000.0;
    out.done_s = (done_ms - wall_start) / 1000.0;
    out.total_rate = o_.records / out.done_s;
    out.steady_rate = done_ms > first_ms
                          ? (o_.records - out.first_seal_records) / ((done_ms - first_ms) / 1000.0)
                          : 0;

    Verify(topts.output_topic, app, out);
    if (!o_.keep_state) std::filesystem::remove_all(config.state_dir);
    return out;
  }

  void Verify(const std::string& output, const std::string& app, StreamsRun& out) {
    std::vector<std::string> problems;
    if (out.processed != o_.records)
      problems.push_back("processed " + std::to_string(out.processed));
    if (out.aborted != 0) problems.push_back(std::to_string(out.aborted) + " aborted commits");
    for (const auto& topic : {output, cm::topology::Topology::ChangelogTopic(app, "counts")}) {
      auto w = QueryWatermarks(bootstrap_, topic, o_.partitions);
      if (w.TotalLow() != 0)
        problems.push_back(topic + " lost its front on the broker (5 MiB limit)");
    }
    std::map<std::string, uint64_t> last;
    auto stats = ConsumeAll(bootstrap_, {{output, o_.partitions}}, "bench-verify-" + output,
                            [&](const rd_kafka_message_t* m) {
                              uint64_t v = std::strtoull(
                                  std::string(static_cast<const char*>(m->payload), m->len).c_str(),
                                  nullptr, 10);
                              last[std::string(static_cast<const char*>(m->key), m->key_len)] = v;
                            });
    // Every update is one output; per commit, at least one per key and at most one per record.
    if (o_.emit_per_commit ? stats.records > o_.records || stats.records < last.size()
                           : stats.records != o_.records) {
      problems.push_back(output + " holds " + std::to_string(stats.records) + " records");
    }
    uint64_t sum = 0, mismatched = 0;
    for (int k = 0; k < o_.keys; ++k) {
      uint64_t want = expected_[static_cast<size_t>(k)];
      auto it = last.find(KeyName(k));
      uint64_t got = it == last.end() ? 0 : it->second;
      sum += got;
      if (got != want) ++mismatched;
    }
    if (mismatched) problems.push_back(std::to_string(mismatched) + " keys with a wrong count");
    if (sum != o_.records) problems.push_back("counts sum to " + std::to_string(sum));
    out.verified = problems.empty();
    if (out.verified) {
      out.verify_note = "verified: " + std::to_string(last.size()) + " keys, counts sum " +
                        std::to_string(sum) + ", " + std::to_string(stats.records) + " outputs";
    } else {
      out.verify_note = "VERIFY FAILED:";
      for (const auto& p : problems) out.verify_note += " " + p + ";";
    }
  }

  Options o_;
  LogCapture* capture_ = nullptr;
  std::unique_ptr<cm::topology::EmbeddedBroker> broker_;
  std::unique_ptr<cm::topology::TopicAdmin> admin_;
  std::string bootstrap_;
  std::vector<uint64_t> expected_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{
      "cmstream pipeline benchmark: counting topology vs a plain consumer, embedded broker"};
  app.add_option("--records", o.records, "records to load and process")->capture_default_str();
  app.add_option("--keys", o.keys, "distinct keys")
      ->check(CLI::Range(1, 100'000'000))
      ->capture_default_str();
  app.add_option("--value-bytes", o.value_bytes, "value size")
      ->check(CLI::Range(1, 100'000))
      ->capture_default_str();
  app.add_option("--partitions", o.partitions,
                 "partitions of count-input (and of the topics the app creates)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--runs", o.runs, "runs; the table shows each and the median")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--commit-interval-ms", o.commit_interval_ms, "StreamsConfig.commit_interval")
      ->check(CLI::Range(1, 60'000))
      ->capture_default_str();
  app.add_option("--cache-max-bytes", o.cache_max_bytes,
                 "StreamsConfig.cache_max_bytes (the record cache)")
      ->capture_default_str();
  app.add_option("--log", o.log_file, "where the engine's log lines go (default <work-dir>.log)");
  app.add_option("--work-dir", o.work_dir,
                 "state directories (default /tmp/cmstream-bench-pipeline-<pid>)");
  app.add_flag("--keep-state", o.keep_state, "keep the state directories");
  app.add_flag("--skip-raw", o.skip_raw, "skip the raw consumer (profiling the engine alone)");
  app.add_flag("--timeline", o.timeline,
               "print every sealed commit (time since Start(), records covered)");
  app.add_option("--producer-override", o.producer_overrides,
                 "KEY=VALUE for StreamsConfig.producer_overrides (experiments; repeatable)");
  app.add_option("--consumer-override", o.consumer_overrides,
                 "KEY=VALUE for StreamsConfig.consumer_overrides (experiments; repeatable)");
  app.add_option("--raw-override", o.raw_overrides,
                 "KEY=VALUE for the raw consumer (experiments; repeatable)");
  app.add_flag("--raw-only", o.raw_only, "only the raw consumer (experiments)");
  app.add_flag("--emit-per-commit", o.emit_per_commit,
               "the count emits each changed key's latest count once per commit, as Kafka "
               "Streams' count() with its record cache (default: every update)");
  CLI11_PARSE(app, argc, argv);
  if (o.work_dir.empty()) o.work_dir = "/tmp/cmstream-bench-pipeline-" + std::to_string(getpid());
  if (o.log_file.empty()) o.log_file = o.work_dir + ".log";
  return PipelineBench(o).Main();
}
