// Two `cmstream run` instances of the counting topology share the partitions of one
// `cmstream broker`; one of them is killed with SIGKILL three times while at least 200,000
// records arrive. Every key must end at its exact count (nothing lost, nothing counted twice), and
// a plain read_committed consumer of the output topic must see each output exactly once. Run
// with each --count-emit: every update (each key's outputs are 1..n) and per commit (deferred
// to the commit by ProcessorContext::ForwardAtCommit: each key's outputs strictly increase).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "child_process.h"
#include "kafka_clients.h"
#include "run_instance.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using testing::ChildProcess;
using testing::WaitFor;

constexpr int kPartitions = 8;
constexpr int kKeys = 1000;
constexpr int kMinRecords = 200'000;  // at least; the input goes on until the kills are done

using testing::CmstreamBinary;

using Instance = testing::RunInstance;

class CountingFailoverTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CountingFailoverTest, SigkilledInstanceLosesNothingAndCountsNothingTwice) {
  const bool per_commit = GetParam() == "per-commit";
  auto dir = std::filesystem::temp_directory_path() / ("cm-e2e-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string info = (dir / "broker.json").string();

  ChildProcess broker({CmstreamBinary(), "broker", "--info-file", info, "--topic",
                       "count-input:" + std::to_string(kPartitions), "--topic",
                       "count-output:" + std::to_string(kPartitions)},
                      (dir / "broker.log").string());
  broker.Start();
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(info); }, 20s)) << broker.Log();
  nlohmann::json endpoints;
  std::ifstream(info) >> endpoints;
  const std::string bootstrap = endpoints["bootstrap"];
  const std::string admin = endpoints["admin"];

  auto make = [&](const std::string& id) {
    Instance in{id, testing::FreePort(), nullptr};
    in.process = std::make_unique<ChildProcess>(
        std::vector<std::string>{CmstreamBinary(), "run", "--brokers", bootstrap, "--broker-admin",
                                 admin, "--app-id", "e2e-count", "--instance-id", id, "--state-dir",
                                 (dir / id).string(), "--http",
                                 "127.0.0.1:" + std::to_string(in.port), "--topology", "counting",
                                 "--count-emit", GetParam()},
        (dir / (id + ".log")).string());
    in.process->Start();
    return in;
  };
  Instance a = make("a");
  Instance b = make("b");
  ASSERT_TRUE(WaitFor([&] { return a.Ready() && b.Ready(); }, 60s))
      << a.process->Log() << b.process->Log();

  // The producer runs alongside the kills, paced (about 5,000 records/s) so that every kill
  // lands mid-stream, and goes on until the kills are done, however slow the build (ASan) or
  // the machine: each restart waits out the session timeout of the killed member. It stops at
  // a multiple of kKeys, so every key ends at the same count.
  // A failed assertion returns early; the jthread's destructor then stops and joins it.
  std::atomic<int> produced{0};
  std::jthread producer([&](std::stop_token kills_done) {
    auto p = testing::NewProducer(bootstrap);
    int i = 0;
    for (; i < kMinRecords || !kills_done.stop_requested(); i += 1000) {
      for (int k = i; k < i + 1000; ++k)
        testing::Produce(p.get(), "count-input", "key-" + std::to_string(k % kKeys), "v");
      rd_kafka_flush(p.get(), 10000);
      produced = i + 1000;
      std::this_thread::sleep_for(200ms);
    }
    rd_kafka_flush(p.get(), 30000);
  });
  static_assert(1000 % kKeys == 0, "each chunk of 1,000 records gives every key the same count");

  for (int kill = 1; kill <= 3; ++kill) {
    // Kill b while it is busy with its share of the stream and has committed some of it, so
    // that its restart has a local checkpoint to restore from.
    ASSERT_TRUE(WaitFor([&] { return b.Processed() >= 2000 && b.Commits() >= 2; }, 120s))
        << b.process->Log();
    b.process->Kill(SIGKILL);
    b.process->Start();  // same instance id and state directory
    ASSERT_TRUE(WaitFor([&] { return b.Ready(); }, 120s)) << b.process->Log();
  }
  producer.request_stop();
  producer.join();
  const int records = produced.load();

  // Final counts are the last value per key on the output topic.
  testing::TopicReader reader(bootstrap, "count-output", kPartitions);
  std::map<std::string, long> last;
  std::map<std::string, std::vector<long>> seen;  // every output per key, in log order
  auto all_exact = [&] {
    for (auto& m : reader.Poll()) {
      last[m.key] = std::stol(m.value);
      seen[m.key].push_back(last[m.key]);
    }
    if (static_cast<int>(last.size()) != kKeys) return false;
    for (const auto& [key, count] : last) {
      if (count != records / kKeys) return false;
    }
    return true;
  };
  bool exact = WaitFor(all_exact, 180s, 200ms);
  int wrong = 0;
  std::string sample;
  for (const auto& [key, count] : last) {
    if (count != records / kKeys) {
      if (++wrong <= 5) sample += key + "=" + std::to_string(count) + " ";
    }
  }
  EXPECT_TRUE(exact) << last.size() << " keys seen, " << wrong << " with a wrong count: " << sample;

  // Each key's outputs are 1, 2, ..., 200 (per commit: strictly increasing, ending there):
  // none from a commit the kills cut off, none twice.
  size_t outputs = 0;
  for (const auto& [key, values] : seen) outputs += values.size();
  RecordProperty("outputs_seen", static_cast<int>(outputs));
  std::cout << "outputs seen on count-output: " << outputs << " for " << records << " inputs\n";
  int not_once = 0;
  std::string first_bad;
  for (const auto& [key, values] : seen) {
    bool once = per_commit ? !values.empty() && values.back() == records / kKeys
                           : static_cast<long>(values.size()) == records / kKeys;
    for (size_t i = 0; once && i < values.size(); ++i) {
      once =
          per_commit ? i == 0 || values[i - 1] < values[i] : values[i] == static_cast<long>(i + 1);
    }
    if (!once && ++not_once == 1) {
      first_bad = key + ":";
      for (size_t i = 0; i < values.size() && i < 40; ++i)
        first_bad += " " + std::to_string(values[i]);
    }
  }
  EXPECT_EQ(not_once, 0) << "keys whose outputs were not each seen exactly once, e.g. "
                         << first_bad;
  if (per_commit) {
    EXPECT_LT(outputs, static_cast<size_t>(records)) << "not one per commit";
  }

  // b restarted on its own state: its restores began at its checkpoint, not at offset 0.
  std::string b_log = b.process->Log();
  std::regex plan(
      R"(\"event\":\"restore_plan\",\"from\":(\d+),\"level\":\"info\",\"logStart\":\d+,\"task\":\"[0-9_]+\",\"to\":(\d+),\"topic\":\"e2e-count-counts-changelog\")");
  int tail_restores = 0;
  for (auto it = std::sregex_iterator(b_log.begin(), b_log.end(), plan);
       it != std::sregex_iterator(); ++it) {
    long from = std::stol((*it)[1]);
    long to = std::stol((*it)[2]);
    if (from > 0 && from <= to) ++tail_restores;
  }
  EXPECT_GT(tail_restores, 0) << "no restore of b started after offset 0";

  // SIGTERM is a clean shutdown: final commit, tasks closed, exit status 0.
  for (int status : {a.process->Kill(SIGTERM), b.process->Kill(SIGTERM), broker.Kill(SIGTERM)}) {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "wait status " << status;
  }
  // Under the asan preset the processes report memory and UB errors into their logs.
  for (const std::string& log : {a.process->Log(), b.process->Log(), broker.Log()}) {
    EXPECT_EQ(log.find("Sanitizer"), std::string::npos) << log.substr(log.find("Sanitizer"), 2000);
    EXPECT_EQ(log.find("runtime error:"), std::string::npos);
  }
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(CountEmit, CountingFailoverTest,
                         ::testing::Values("every-update", "per-commit"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "per-commit" ? "PerCommit" : "EveryUpdate";
                         });

}  // namespace
}  // namespace cm
