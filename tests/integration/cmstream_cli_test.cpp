// The cmstream command line refuses bad flags with exit code 2 and a message that names the
// flag, before it starts anything (no terminate on a bad number, no half-started broker).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "child_process.h"

namespace cm {
namespace {

using ::testing::HasSubstr;
using testing::RunToEnd;

class CmstreamCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDirectory("cm-cli");
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::pair<int, std::string> Run(const std::vector<std::string>& args) {
    return RunToEnd(args, dir_ / ("run-" + std::to_string(++runs_) + ".log"));
  }

  std::filesystem::path dir_;
  int runs_ = 0;
};

// `broker --topic NAME:N` with a bad N once ended in std::terminate (issue 15).
TEST_F(CmstreamCliTest, BrokerRefusesABadTopicSpecWithExitCode2) {
  for (const char* spec : {"t:abc", "t:0", "t:-3", "t:4x", "t:99999999999", ":4"}) {
    auto [code, out] = Run({"broker", "--topic", spec});
    EXPECT_EQ(code, 2) << spec << ": " << out;
    EXPECT_THAT(out, HasSubstr(std::string("--topic ") + spec)) << out;
  }
}

TEST_F(CmstreamCliTest, RunRefusesBadFlagsWithExitCode2) {
  const std::string state = (dir_ / "state").string();
  struct Case {
    std::vector<std::string> args;
    const char* says;
  };
  for (const Case& c : {Case{{"--topology", "nope"}, "unknown --topology 'nope'"},
                        Case{{"--http-max-body", "lots"}, "--http-max-body"},
                        Case{{"--guarantee", "maybe"}, "--guarantee must be"},
                        Case{{"--commit-interval", "soon"}, "--commit-interval"},
                        Case{{"--http-rate-limit", "fast"}, "--http-rate-limit"},
                        Case{{"--http-request-timeout", "0s"}, "--http-request-timeout"},
                        // The usage application's input limits (README "Configuration").
                        Case{{"--max-batch-events", "0"}, "--max-batch-events must be positive"},
                        Case{{"--max-id-bytes=-1"}, "--max-id-bytes must be positive"},
                        Case{{"--max-query-buckets", "0"}, "--max-query-buckets must be positive"},
                        Case{{"--max-json-depth", "2"}, "--max-json-depth must be 3"},
                        Case{{"--max-json-depth", "65"}, "--max-json-depth must be 3"},
                        Case{{"--max-event-bytes", "0"}, "--max-event-bytes must be positive"},
                        Case{{"--max-event-bytes", "lots"}, "--max-event-bytes"},
                        Case{{"--max-event-bytes", "2MiB"}, "must not exceed --http-max-body"},
                        Case{{"--max-report-range", "0d"}, "--max-report-range"}}) {
    std::vector<std::string> args{"run", "--embedded", "--state-dir",
                                  state, "--http",     "127.0.0.1:0"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto [code, out] = Run(args);
    EXPECT_EQ(code, 2) << c.says << ": " << out;
    EXPECT_THAT(out, HasSubstr(c.says)) << out;
  }
}

}  // namespace
}  // namespace cm
