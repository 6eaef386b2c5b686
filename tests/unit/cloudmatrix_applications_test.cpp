// What `cmstream run|replay|backfill --topology NAME` composes (processors/cloudmatrix/
// applications.h): the applications' sub-topologies as one topology and their snapshot tables
// as one schema.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "processors/cloudmatrix/applications.h"
#include "processors/counting/counting_topology.h"
#include "processors/usage/usage_stores.h"

namespace cm::cloudmatrix {
namespace {

std::set<std::string> StoresOf(const topology::Topology& t) {
  std::set<std::string> names;
  for (const auto& sub : t.subtopologies()) {
    for (const auto& store : sub.stores) names.insert(store.name);
  }
  return names;
}

std::set<std::string> SourcesOf(const topology::Topology& t) {
  std::set<std::string> topics;
  for (const auto& sub : t.subtopologies())
    topics.insert(sub.source_topics.begin(), sub.source_topics.end());
  return topics;
}

TEST(CloudmatrixApplicationsTest, CloudmatrixComposesUsageWithItsStoresTopicsAndSnapshotTables) {
  auto composed = Compose("cloudmatrix", "cm-test");
  ASSERT_TRUE(composed.ok()) << composed.status().ToString();
  EXPECT_EQ(composed->topology.application_id(), "cm-test");
  ASSERT_EQ(composed->apps.size(), 1u);
  EXPECT_EQ(composed->apps[0]->name(), "usage");
  auto stores = StoresOf(composed->topology);
  for (const char* store : {usage::kAggregatesStore, usage::kTotalsStore, usage::kOrgsStore,
                            usage::kAlertsStore, usage::kDedupStore, usage::kCommandResultsStore}) {
    EXPECT_TRUE(stores.count(store)) << store;
  }
  auto sources = SourcesOf(composed->topology);
  EXPECT_TRUE(sources.count("cloudmatrix.events"));
  EXPECT_TRUE(sources.count("cloudmatrix.commands"));
  auto schema = SnapshotSchemaOf(composed->apps);
  std::set<std::string> tables;
  for (const auto& t : schema.tables) tables.insert(t.table);
  EXPECT_TRUE(tables.count("usage_aggregates"));
  EXPECT_TRUE(schema.HasStore(usage::kAggregatesStore));
  EXPECT_FALSE(schema.HasStore(usage::kDedupStore));  // an index, not snapshotted
}

TEST(CloudmatrixApplicationsTest, CountingHasItsStoreAndNoSnapshotTables) {
  auto composed = Compose("counting", "counting-test");
  ASSERT_TRUE(composed.ok()) << composed.status().ToString();
  EXPECT_EQ(StoresOf(composed->topology),
            std::set<std::string>{counting::CountingTopologyOptions{}.store});
  EXPECT_TRUE(SnapshotSchemaOf(composed->apps).tables.empty());
}

TEST(CloudmatrixApplicationsTest, AnUnknownTopologyIsAnInvalidArgumentNamingTheKnownOnes) {
  auto composed = Compose("teams-and-more", "x");
  ASSERT_FALSE(composed.ok());
  EXPECT_EQ(composed.status().code(), state::Status::Code::kInvalidArgument);
  EXPECT_NE(composed.status().message().find("cloudmatrix"), std::string::npos);
  EXPECT_NE(composed.status().message().find("teams-and-more"), std::string::npos);
}

}  // namespace
}  // namespace cm::cloudmatrix
