// topology::RoutePattern: what a route path pattern matches (HttpServer hands its regex to
// cpp-httplib and answers 405 with it).
#include <gtest/gtest.h>

#include <stdexcept>

#include "topology/query/route_pattern.h"

namespace cm::topology {
namespace {

TEST(RoutePattern, CapturesOneNonEmptySegmentPerName) {
  RoutePattern p("/v1/usage/orgs/{org}/quota/check");
  EXPECT_EQ(p.names(), std::vector<std::string>{"org"});
  auto m = p.Match("/v1/usage/orgs/acme corp/quota/check");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->at("org"), "acme corp");
  EXPECT_FALSE(p.Match("/v1/usage/orgs//quota/check"));
  EXPECT_FALSE(p.Match("/v1/usage/orgs/a/b/quota/check"));
  EXPECT_FALSE(p.Match("/v1/usage/orgs/a/quota/check/"));
  EXPECT_FALSE(p.Match("/v1/usage/orgs/a/quota"));
}

TEST(RoutePattern, LiteralsAreLiteral) {
  RoutePattern p("/v1/a.b+(c)/{id}");
  EXPECT_TRUE(p.Match("/v1/a.b+(c)/7"));
  EXPECT_FALSE(p.Match("/v1/aXbb(c)/7"));
}

// An unclosed brace once made Route loop forever (find returned npos, i became 0).
TEST(RoutePattern, AMalformedPatternIsRefused) {
  EXPECT_THROW(RoutePattern("/v1/{id"), std::invalid_argument);
  EXPECT_THROW(RoutePattern("/v1/{}"), std::invalid_argument);
}

}  // namespace
}  // namespace cm::topology
