#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "state/task_state.h"
#include "topology/processor/command_results.h"

namespace cm::topology {
namespace {

// The results of commands over a real RocksDB store, as a task keeps them.
class CommandResultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cm_command_results_" + std::to_string(::getpid()) + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    state::StoreSpec spec;
    spec.name = "results";
    spec.type = state::StoreType::kKeyValue;
    state::TaskStateOptions options;
    options.directory = dir_.string();
    options.stores = {spec};
    auto opened = state::TaskState::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    state_ = std::move(opened).value();
    store_ = state_->key_value_store("results");
  }
  void TearDown() override {
    state_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::filesystem::path dir_;
  std::unique_ptr<state::TaskState> state_;
  state::KeyValueStore* store_ = nullptr;
};

TEST_F(CommandResultsTest, RecordsAResultThatAnswersRetries) {
  CommandResults results(*store_);
  EXPECT_FALSE(results.Applied("cmd-1"));
  results.Record({"cmd-1", "x.do", "org-a", 201, {{"id", "t1"}}, "hash-1", 1'800'000'000'000});
  EXPECT_TRUE(results.Applied("cmd-1"));
  auto read = CommandResults::Read(*store_, "cmd-1");
  ASSERT_TRUE(read);
  EXPECT_EQ((*read)["status"], 201);
  EXPECT_EQ((*read)["body"]["id"], "t1");
  EXPECT_EQ((*read)["requestHash"], "hash-1");
  EXPECT_EQ((*read)["organizationId"], "org-a");
  EXPECT_EQ((*read)["appliedAt"], "2027-01-15T08:00:00.000Z");
  EXPECT_FALSE(CommandResults::Read(*store_, "cmd-2"));
}

TEST_F(CommandResultsTest, ARefusalCarriesTheErrorBodyAndNoRequestHash) {
  CommandResults results(*store_);
  results.Record({"cmd-1", "x.do", "", 400, ErrorBody("validation_error", "bad", {{"field", "a"}}),
                  std::nullopt, 0});
  auto read = CommandResults::Read(*store_, "cmd-1");
  ASSERT_TRUE(read);
  EXPECT_FALSE(read->contains("requestHash"));
  EXPECT_EQ((*read)["body"]["error"]["code"], "validation_error");
  EXPECT_EQ((*read)["body"]["error"]["details"]["field"], "a");
  EXPECT_TRUE(ErrorBody("c", "m", nullptr)["error"]["details"].is_object());
}

TEST_F(CommandResultsTest, ExpiresOldestFirstAndOnlyBeforeTheCutoff) {
  CommandResults results(*store_);
  for (int i = 0; i < 5; ++i)
    results.Record({"cmd-" + std::to_string(i), "x.do", "o", 200, {}, std::nullopt, 1000 * i});
  EXPECT_EQ(results.ExpireBefore(2000), 2u);  // applied at 0 and 1000
  EXPECT_FALSE(results.Applied("cmd-0"));
  EXPECT_FALSE(results.Applied("cmd-1"));
  EXPECT_TRUE(results.Applied("cmd-2"));
  EXPECT_EQ(results.ExpireBefore(10'000, 2), 2u);  // bounded work per call
  EXPECT_TRUE(results.Applied("cmd-4"));
  EXPECT_EQ(results.ExpireBefore(10'000), 1u);
  EXPECT_FALSE(results.Applied("cmd-4"));
  EXPECT_EQ(results.ExpireBefore(10'000), 0u);
  // A command id that sorts before the index tag is unaffected by the index range.
  results.Record({"a", "x.do", "o", 200, {}, std::nullopt, 20'000});
  EXPECT_EQ(results.ExpireBefore(20'000), 0u);
  EXPECT_TRUE(results.Applied("a"));
}

// Punctuators call ExpireBefore every few milliseconds: the store is looked at again only once
// the cutoff has moved a step, so a result outlives its retention by less than that step.
TEST_F(CommandResultsTest, LooksAgainOnlyOnceTheCutoffHasMovedAStep) {
  CommandResults results(*store_);
  EXPECT_EQ(results.ExpireBefore(10'000), 0u);
  results.Record({"late", "x.do", "o", 200, {}, std::nullopt, 10'000});
  EXPECT_EQ(results.ExpireBefore(10'001), 0u) << "within the step of the last look";
  EXPECT_TRUE(results.Applied("late"));
  EXPECT_EQ(results.ExpireBefore(10'000 + CommandResults::kExpiryStepMs - 1), 0u);
  EXPECT_EQ(results.ExpireBefore(10'000 + CommandResults::kExpiryStepMs), 1u);
  EXPECT_FALSE(results.Applied("late"));
}

}  // namespace
}  // namespace cm::topology
