// topology::RoutePattern: what a route path pattern matches (HttpServer dispatches every
// request with it and answers 405 with it).
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
  // A capture is a whole segment: anything else would need a regex to match.
  EXPECT_THROW(RoutePattern("/v1/{id}.csv"), std::invalid_argument);
  EXPECT_THROW(RoutePattern("/v1/x{id}"), std::invalid_argument);
}

TEST(RoutePattern, MatchesSegmentBySegment) {
  RoutePattern p("/v1/teams/{id}/permissions/{user}/check");
  auto m = p.Match("/v1/teams/org~t1/permissions/alice@x.com/check");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->at("id"), "org~t1");
  EXPECT_EQ(m->at("user"), "alice@x.com");
  EXPECT_FALSE(p.Match("/v1/teams/org~t1/permissions/alice/checks"));
  EXPECT_FALSE(p.Match("/v1/teams/org~t1/permissions/alice/chec"));
  EXPECT_FALSE(p.Match("/v1/teams/org~t1/permissions/alice"));
  EXPECT_FALSE(p.Match("/v1/teamsx/org~t1/permissions/alice/check"));
  EXPECT_FALSE(p.Match("v1/teams/org~t1/permissions/alice/check"));
  EXPECT_FALSE(p.Match(""));
  RoutePattern root("/health");
  EXPECT_TRUE(root.Match("/health"));
  EXPECT_FALSE(root.Match("/health/"));
  EXPECT_FALSE(root.Match("/healthz"));
  EXPECT_FALSE(root.Match("/"));
}

}  // namespace
}  // namespace cm::topology
