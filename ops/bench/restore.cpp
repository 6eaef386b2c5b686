// bench_restore: how fast a task rebuilds its store from the changelog, against a plain
// consumer reading the same topics.
//
// One process hosts the embedded broker. Setup: --records records with distinct keys go into
// `count-input`; the counting topology runs over them until all are processed, so the store's
// changelog holds one record per key (plus the commit log). It is stopped, and per run:
//   (a) raw: a plain librdkafka consumer reads every partition of the changelog and of the
//       commit topic (a restore reads both) from the beginning; timed first to last record;
//   (b) restore: the state directory is deleted and a new KafkaStreams with the same app id
//       starts; every task restores from offset 0. The engine's log lines are captured as they
//       are written (stderr is a pipe read by this process), so the times come from the
//       events restore_start / restore_done / task_running, not from ThreadStatus (refreshed
//       every 500 ms only).
// Figures:
//   restore rec/s = records restored (sum of restore_done.records: changelog + commit records)
//                   / (tasks assigned to last task running)
//   ready s       = KafkaStreams::Start() to the last task running (includes the embedded
//                   broker's 3 s initial group-join delay)
//   ratio         = restore rec/s / raw rec/s
// Correctness: after each run the restored RocksDB stores are opened and counted: one entry per
// input key, every count "1".
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ops/bench/bench_common.h"
#include "processors/counting/counting_topology.h"
#include "state/task_state.h"
#include "topology/kafka/embedded_broker.h"
#include "topology/kafka/topic_admin.h"
#include "topology/runtime/kafka_streams.h"

namespace {

using namespace cm::bench;
using cm::topology::KafkaStreams;
using cm::topology::StreamsConfig;

struct Options {
  uint64_t records = 1'000'000;
  int value_bytes = 16;
  int partitions = 32;
  int runs = 3;
  std::string log_file;
  std::string work_dir;
  bool keep_state = false;
  bool skip_verify = false;
};

struct RestoreRun {
  double raw_rate = 0;
  double raw_changelog_rate = 0;  // the changelog alone, for reference
  double raw_nostall_rate = 0;    // changelog + commits with kNoStallConsumer, for reference
  uint64_t raw_changelog = 0, raw_commits = 0;
  double raw_seconds = 0;
  double restore_rate = 0;
  double restore_s = 0;   // tasks_assigned (restores begin) to last task_running
  double ready_s = 0;     // Start() to last task_running
  double assigned_s = 0;  // Start() to tasks_assigned
  double open_s = 0;      // opening the tasks' state databases, before tasks_assigned
  uint64_t restored = 0;
  uint64_t restore_ms_sum = 0;  // sum of restore_done.ms over tasks
  uint64_t tasks = 0;
  // Process CPU (every thread, the in-process broker's included) per million records read.
  double nostall_cpu_per_million = 0;
  double restore_cpu_per_million = 0;  // tasks assigned to last task running
  bool verified = false;
  double CpuRatio() const {
    return restore_cpu_per_million > 0 ? nostall_cpu_per_million / restore_cpu_per_million : 0;
  }
  std::string verify_note;
};

class RestoreBench {
 public:
  explicit RestoreBench(Options o) : o_(std::move(o)) {}

  int Main() {
    std::filesystem::create_directories(o_.work_dir);
    LogCapture capture(o_.log_file);
    capture_ = &capture;
    StartBroker({{"count-input", o_.partitions}}, broker_, admin_, bootstrap_);

    cm::topology::TopologyBuilder builder;
    cm::counting::AddCountingTopology(builder);
    auto topology = builder.Build(app_);
    if (!topology.ok()) Die("topology: " + topology.status().ToString());
    topology_ = std::make_unique<cm::topology::Topology>(std::move(topology).value());
    changelog_ = cm::topology::Topology::ChangelogTopic(app_, "counts");
    commits_ = cm::topology::Topology::CommitTopic(app_, 0);

    Load();
    BuildChangelog();

    Table table({{"raw rec/s", "%.0f"},
                 {"raw no-stall rec/s", "%.0f"},
                 {"restore rec/s", "%.0f"},
                 {"ratio", "%.3f"},
                 {"ratio vs no-stall", "%.3f"},
                 {"restored", "%.0f"},
                 {"restore s", "%.3f"},
                 {"open s", "%.3f"},
                 {"ready s", "%.3f"},
                 {"cpu ratio", "%.3f"}});
    bool all_ok = true;
    for (int r = 1; r <= o_.runs; ++r) {
      RestoreRun run = Run(r);
      all_ok = all_ok && run.verified;
      Say("run %d: raw %.0f rec/s (%llu changelog + %llu commit records in %.3f s), changelog "
          "alone %.0f rec/s, "
          "no-stall %.0f rec/s | restore %.0f rec/s "
          "(%llu records, %llu tasks, %.3f s; sum of per-task restore_done.ms %llu) | assigned at "
          "%.2f s, "
          "ready at %.2f s | CPU s per million records: no-stall %.3f, restore %.3f | %s\n",
          r, run.raw_rate, static_cast<unsigned long long>(run.raw_changelog),
          static_cast<unsigned long long>(run.raw_commits), run.raw_seconds, run.raw_changelog_rate,
          run.raw_nostall_rate, run.restore_rate, static_cast<unsigned long long>(run.restored),
          static_cast<unsigned long long>(run.tasks), run.restore_s,
          static_cast<unsigned long long>(run.restore_ms_sum), run.assigned_s, run.ready_s,
          run.nostall_cpu_per_million, run.restore_cpu_per_million, run.verify_note.c_str());
      table.Add("run " + std::to_string(r),
                {run.raw_rate, run.raw_nostall_rate, run.restore_rate,
                 run.raw_rate > 0 ? run.restore_rate / run.raw_rate : 0,
                 run.raw_nostall_rate > 0 ? run.restore_rate / run.raw_nostall_rate : 0,
                 static_cast<double>(run.restored), run.restore_s, run.open_s, run.ready_s,
                 run.CpuRatio()});
    }
    table.AddMedian();
    std::printf(
        "\ncmstream restore benchmark: counting store, exactly_once, 1 stream thread, embedded "
        "broker\n");
    std::printf(
        "records %llu (distinct keys), value %d B, partitions %d, changelog %s: %lld offsets, "
        "commit log: %lld offsets, runs %d\n\n",
        static_cast<unsigned long long>(o_.records), o_.value_bytes, o_.partitions,
        changelog_.c_str(), static_cast<long long>(changelog_high_),
        static_cast<long long>(commits_high_), o_.runs);
    table.Print(stdout);
    std::printf(
        "\nraw       = plain consumer (librdkafka defaults) over changelog + commit topic (what a "
        "restore\n"
        "            reads), first to last record\n"
        "no-stall  = the same with queued.min.messages=10000000 (librdkafka 2.0.2 pauses fetching "
        "~1 s\n"
        "            whenever the queue passes 100,000 messages; reference only)\n"
        "restore   = records restored (changelog + commit records) / (tasks assigned to last task "
        "running)\n"
        "ratio     = restore / raw\n"
        "open s    = opening the tasks' state databases, before the tasks are assigned (not in "
        "restore s)\n"
        "ready s   = KafkaStreams::Start() to every task running (includes the broker's 3 s "
        "first-join delay)\n"
        "cpu ratio = the process's CPU per record: no-stall consumer / restore (all threads, the "
        "in-process\n"
        "            broker included; less noisy than the rates on a shared machine)\n"
        "goal (issue): ratio >= 0.7\n");
    std::printf("correctness: %s; engine log: %s (%llu errors, %llu warnings)\n",
                all_ok ? (o_.skip_verify
                              ? "not checked (--skip-verify)"
                              : "every run verified (restored store == one entry per key, each 1)")
                       : "FAILED, see above",
                o_.log_file.c_str(), static_cast<unsigned long long>(capture.errors()),
                static_cast<unsigned long long>(capture.warnings()));
    std::fflush(stdout);
    broker_.reset();
    if (!o_.keep_state) std::filesystem::remove_all(o_.work_dir);
    capture_ = nullptr;
    return all_ok ? 0 : 1;
  }

 private:
  StreamsConfig Config(const std::string& state_dir) const {
    StreamsConfig config;
    config.application_id = app_;
    config.instance_id = "bench";
    config.bootstrap_servers = bootstrap_;
    config.state_dir = state_dir;
    config.threads = 1;
    config.guarantee = cm::topology::ProcessingGuarantee::kExactlyOnce;
    config.broker_filters_aborted = false;  // the embedded broker
    return config;
  }

  void Load() {
    Loader loader(bootstrap_);
    auto t0 = Clock::now();
    int64_t ts = cm::topology::WallClockMs();
    char key[32];
    for (uint64_t i = 0; i < o_.records; ++i) {
      std::snprintf(key, sizeof key, "k%07llu", static_cast<unsigned long long>(i));
      std::string value = std::to_string(i);
      if (static_cast<int>(value.size()) < o_.value_bytes)
        value = std::string(o_.value_bytes - value.size(), 'v') + value;
      loader.Send("count-input", key, value.substr(0, static_cast<size_t>(o_.value_bytes)),
                  ts + static_cast<int64_t>(i / 1000));
      if (i % 1024 == 0) loader.Poll();
    }
    loader.Flush();
    double secs = Seconds(Clock::now() - t0);
    RequireNothingDropped(bootstrap_, "count-input", o_.partitions);
    Say("loaded %llu records with distinct keys into count-input (%d partitions) in %.2f s\n",
        static_cast<unsigned long long>(o_.records), o_.partitions, secs);
  }

  void BuildChangelog() {
    capture_->Mark("building the changelog");
    StreamsConfig config = Config(o_.work_dir + "/state-build");
    std::filesystem::remove_all(config.state_dir);
    KafkaStreams streams(*topology_, config, *admin_);
    auto t0 = Clock::now();
    if (auto s = streams.Start(); !s.ok()) Die("KafkaStreams::Start: " + s.ToString());
    const auto give_up = t0 + std::chrono::minutes(20);
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      uint64_t processed = 0;
      for (const auto& t : streams.Threads()) {
        if (!t.alive) Die("stream thread failed: " + t.error);
        processed += t.processed;
      }
      if (processed >= o_.records) break;
      if (Clock::now() > give_up)
        Die("building the changelog: only " + std::to_string(processed) + " processed");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    streams.Stop();
    double secs = Seconds(Clock::now() - t0);
    for (const auto& topic :
         {std::string("count-input"), changelog_, commits_, std::string("count-output")}) {
      RequireNothingDropped(bootstrap_, topic, o_.partitions);
    }
    changelog_high_ = QueryWatermarks(bootstrap_, changelog_, o_.partitions).TotalHigh();
    commits_high_ = QueryWatermarks(bootstrap_, commits_, o_.partitions).TotalHigh();
    std::filesystem::remove_all(config.state_dir);
    Say("built the changelog in %.2f s: %s has %lld offsets, %s %lld\n", secs, changelog_.c_str(),
        static_cast<long long>(changelog_high_), commits_.c_str(),
        static_cast<long long>(commits_high_));
  }

  RestoreRun Run(int r) {
    RestoreRun out;
    capture_->Mark("run " + std::to_string(r) + " raw");
    auto raw = ConsumeAll(bootstrap_, {{changelog_, o_.partitions}, {commits_, o_.partitions}},
                          "bench-raw-" + std::to_string(r));
    out.raw_rate = raw.Rate();
    out.raw_seconds = raw.seconds;
    out.raw_changelog = raw.per_topic[changelog_];
    out.raw_commits = raw.per_topic[commits_];
    if (out.raw_changelog != o_.records) {
      Die("the changelog holds " + std::to_string(out.raw_changelog) + " records, expected " +
          std::to_string(o_.records));
    }
    out.raw_changelog_rate = ConsumeAll(bootstrap_, {{changelog_, o_.partitions}},
                                        "bench-raw-changelog-" + std::to_string(r))
                                 .Rate();
    const ConsumeStats nostall =
        ConsumeAll(bootstrap_, {{changelog_, o_.partitions}, {commits_, o_.partitions}},
                   "bench-raw-nostall-" + std::to_string(r), nullptr, kNoStallConsumer);
    out.raw_nostall_rate = nostall.Rate();
    out.nostall_cpu_per_million = nostall.cpu_seconds * 1e6 / static_cast<double>(nostall.records);

    capture_->Mark("run " + std::to_string(r) + " restore");
    StreamsConfig config = Config(o_.work_dir + "/state");
    std::filesystem::remove_all(config.state_dir);  // "delete the state directory"
    capture_->Clear();
    capture_->Watch({"tasks_assigned", "restore_done", "task_running", "state_discarded",
                     "stream_thread_failed"});
    {
      KafkaStreams streams(*topology_, config, *admin_);
      const auto t_start = Clock::now();
      if (auto s = streams.Start(); !s.ok()) Die("KafkaStreams::Start: " + s.ToString());
      const auto give_up = t_start + std::chrono::minutes(15);
      double cpu_assigned = -1;
      while (capture_->Count("task_running") < static_cast<size_t>(o_.partitions)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (cpu_assigned < 0 && capture_->Count("tasks_assigned") > 0)
          cpu_assigned = ProcessCpuSeconds();
        if (auto f = streams.Failure(); !f.empty()) Die(f);
        if (Clock::now() > give_up) Die("restore did not finish in 15 minutes");
      }
      const double restore_cpu = ProcessCpuSeconds() - cpu_assigned;
      // Ready() reads ThreadStatus, refreshed every 500 ms: confirm, untimed.
      while (!streams.Ready()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      streams.Stop();

      bool have_start = false;
      Clock::time_point first_restore{}, last_running{};
      for (const auto& e : capture_->Events()) {
        // Restoring begins when the tasks are assigned: the first restore_start is logged only
        // after the first task's restore plan (watermark queries) is made.
        if (e.event == "tasks_assigned" && !have_start) {
          have_start = true;
          first_restore = e.at;
          out.assigned_s = Seconds(e.at - t_start);
          out.open_s = e.fields.value("openMs", 0.0) / 1000;
        }
        if (e.event == "restore_done") {
          out.restored += e.fields.value("records", uint64_t{0});
          out.restore_ms_sum += e.fields.value("ms", uint64_t{0});
          ++out.tasks;
        }
        if (e.event == "task_running") last_running = std::max(last_running, e.at);
        if (e.event == "state_discarded") Die("a task discarded its state: " + e.fields.dump());
      }
      out.restore_s = Seconds(last_running - first_restore);
      out.ready_s = Seconds(last_running - t_start);
      out.restore_rate = out.restore_s > 0 ? out.restored / out.restore_s : 0;
      if (out.restored > 0)
        out.restore_cpu_per_million = restore_cpu * 1e6 / static_cast<double>(out.restored);
    }
    Verify(config.state_dir, out);
    if (!o_.keep_state) std::filesystem::remove_all(config.state_dir);
    return out;
  }

  // Opens every task's restored store and checks it: one entry per input key, each "1".
  void Verify(const std::string& state_dir, RestoreRun& out) {
    if (o_.skip_verify) {
      out.verified = true;
      out.verify_note = "not verified";
      return;
    }
    uint64_t entries = 0, wrong = 0;
    for (int p = 0; p < o_.partitions; ++p) {
      cm::state::TaskStateOptions options;
      options.directory = state_dir + "/" + app_ + "/0_" + std::to_string(p);
      options.stores = topology_->subtopologies().at(0).stores;
      auto state = cm::state::TaskState::Open(options);
      if (!state.ok())
        Die("open restored state " + options.directory + ": " + state.status().ToString());
      (*state)->key_value_store("counts")->Range("", "",
                                                 [&](std::string_view, std::string_view value) {
                                                   ++entries;
                                                   if (value != "1") ++wrong;
                                                   return true;
                                                 });
    }
    out.verified =
        entries == o_.records && wrong == 0 && out.tasks == static_cast<uint64_t>(o_.partitions);
    out.verify_note = (out.verified ? "verified: " : "VERIFY FAILED: ") + std::to_string(entries) +
                      " entries restored, " + std::to_string(wrong) +
                      " with a count other than 1, " + std::to_string(out.tasks) +
                      " tasks restored";
  }

  Options o_;
  const std::string app_ = "bench-restore";
  LogCapture* capture_ = nullptr;
  std::unique_ptr<cm::topology::EmbeddedBroker> broker_;
  std::unique_ptr<cm::topology::TopicAdmin> admin_;
  std::unique_ptr<cm::topology::Topology> topology_;
  std::string bootstrap_;
  std::string changelog_, commits_;
  int64_t changelog_high_ = 0, commits_high_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{
      "cmstream restore benchmark: changelog restore vs a plain consumer, embedded broker"};
  app.add_option("--records", o.records, "records (= distinct keys = changelog records)")
      ->capture_default_str();
  app.add_option("--value-bytes", o.value_bytes, "input value size")
      ->check(CLI::Range(1, 100'000))
      ->capture_default_str();
  app.add_option("--partitions", o.partitions, "partitions of count-input, hence tasks")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--runs", o.runs, "runs; the table shows each and the median")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  app.add_option("--log", o.log_file, "where the engine's log lines go (default <work-dir>.log)");
  app.add_option("--work-dir", o.work_dir,
                 "state directories (default /tmp/cmstream-bench-restore-<pid>)");
  app.add_flag("--keep-state", o.keep_state, "keep the state directories");
  app.add_flag("--skip-verify", o.skip_verify, "do not open the restored stores to check them");
  CLI11_PARSE(app, argc, argv);
  if (o.work_dir.empty()) o.work_dir = "/tmp/cmstream-bench-restore-" + std::to_string(getpid());
  if (o.log_file.empty()) o.log_file = o.work_dir + ".log";
  return RestoreBench(o).Main();
}
