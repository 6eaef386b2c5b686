// topology::ParseJson: the one parser for JSON from outside the process, bounded in depth so a
// hostile document cannot exhaust the stack.
#include <gtest/gtest.h>

#include <string>

#include "topology/common/json.h"

namespace cm::topology {
namespace {

std::string Nested(int depth, const std::string& open = "[", const std::string& close = "]") {
  std::string s;
  for (int i = 0; i < depth; ++i) s += open;
  s += "1";
  for (int i = 0; i < depth; ++i) s += close;
  return s;
}

TEST(ParseJsonTest, AcceptsDocumentsUpToTheDepthLimit) {
  auto j = ParseJson(Nested(kMaxJsonDepth));
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  const nlohmann::json* inner = &*j;
  for (int i = 0; i < kMaxJsonDepth; ++i) inner = &(*inner)[0];
  EXPECT_EQ(*inner, 1);
  std::string objects;
  for (int i = 0; i < kMaxJsonDepth; ++i) objects += R"({"a":)";
  objects += "1" + std::string(kMaxJsonDepth, '}');
  EXPECT_TRUE(ParseJson(objects).ok());
}

TEST(ParseJsonTest, RefusesOneLevelMoreAndAHostileDepthWithoutParsing) {
  for (int depth : {kMaxJsonDepth + 1, 70'000}) {
    auto j = ParseJson(Nested(depth));
    ASSERT_FALSE(j.ok()) << depth;
    EXPECT_EQ(j.status().code(), state::Status::Code::kInvalidArgument);
    EXPECT_EQ(j.status().message(), "JSON nested deeper than 64 levels");
  }
  // Unbalanced: only opening brackets, as a truncated attack would send.
  EXPECT_FALSE(ParseJson(std::string(1'000'000, '[')).ok());
}

TEST(ParseJsonTest, BracketsInsideStringsDoNotCount) {
  const std::string brackets(10'000, '[');
  auto j = ParseJson(R"({"s":")" + brackets + R"(","t":"\"[[[[\\"})");
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["s"], brackets);
  EXPECT_EQ((*j)["t"], "\"[[[[\\");
}

TEST(ParseJsonTest, InvalidJsonSaysSo) {
  for (const char* text : {"", "{", "not json", "[1,]", "{\"a\":1}}"}) {
    auto j = ParseJson(text);
    ASSERT_FALSE(j.ok()) << text;
    EXPECT_EQ(j.status().message(), "not valid JSON") << text;
  }
}

}  // namespace
}  // namespace cm::topology
