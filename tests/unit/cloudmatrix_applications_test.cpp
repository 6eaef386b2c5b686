// What `cmstream run|replay|backfill --topology NAME` composes (processors/cloudmatrix/
// applications.h): the applications' sub-topologies as one topology and their snapshot tables
// as one schema.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "processors/cloudmatrix/applications.h"
#include "processors/cloudmatrix/command_line.h"
#include "processors/counting/counting_topology.h"
#include "processors/teams/teams_commands.h"
#include "processors/teams/teams_processor.h"
#include "processors/teams/teams_stores.h"
#include "processors/usage/usage_commands.h"
#include "processors/usage/usage_stores.h"
#include "processors/webhooks/webhooks_stores.h"
#include "topology/processor/command_results.h"
#include "topology/testing/topology_test_driver.h"

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

TEST(CloudmatrixApplicationsTest,
     CloudmatrixComposesUsageTeamsAndWebhooksWithTheirStoresTopicsAndSnapshotTables) {
  auto composed = Compose("cloudmatrix", "cm-test");
  ASSERT_TRUE(composed.ok()) << composed.status().ToString();
  EXPECT_EQ(composed->topology.application_id(), "cm-test");
  ASSERT_EQ(composed->apps.size(), 4u);
  EXPECT_EQ(composed->apps[0]->name(), "auth");
  EXPECT_EQ(composed->apps[1]->name(), "usage");
  EXPECT_EQ(composed->apps[2]->name(), "teams");
  EXPECT_EQ(composed->apps[3]->name(), "webhooks");
  // The API keys: a global store every instance reads in full, not a task's store.
  ASSERT_EQ(composed->topology.global_stores().size(), 1u);
  EXPECT_EQ(composed->topology.global_stores()[0].topic, "cloudmatrix.api-keys");
  auto stores = StoresOf(composed->topology);
  for (const char* store : {usage::kAggregatesStore, usage::kTotalsStore, usage::kOrgsStore,
                            usage::kAlertsStore, usage::kDedupStore, usage::kCommandResultsStore}) {
    EXPECT_TRUE(stores.count(store)) << store;
  }
  // Teams reads the commands through usage's source, in the same sub-topology (so a team's
  // organization has one owning task for both), and writes cloudmatrix.team-events.
  for (const char* store :
       {teams::kTeamsStore, teams::kMembersStore, teams::kPermissionsStore,
        teams::kInvitationsStore, teams::kCommandResultsStore, teams::kInvitationTimersStore}) {
    EXPECT_TRUE(stores.count(store)) << store;
  }
  const auto& teams_node = composed->topology.node(teams::kTeamsProcessorNode);
  EXPECT_EQ(teams_node.parents, (std::vector<std::string>{"usage-source"}));
  bool team_events = false;
  for (const auto& sub : composed->topology.subtopologies())
    for (const auto& t : sub.sink_topics) team_events |= t == "cloudmatrix.team-events";
  EXPECT_TRUE(team_events);
  auto sources = SourcesOf(composed->topology);
  EXPECT_TRUE(sources.count("cloudmatrix.events"));
  EXPECT_TRUE(sources.count("cloudmatrix.commands"));
  // Webhooks fans out the events, team events and quota alerts of an organization on the task
  // that owns its commands, and applies the attempt outcomes there too: one sub-topology.
  const auto commands_sub = composed->topology.SubTopologyOfSource("cloudmatrix.commands");
  for (const char* topic : {"cloudmatrix.events", "cloudmatrix.team-events",
                            "cloudmatrix.quota-alerts", "cloudmatrix.webhook-attempts"}) {
    EXPECT_TRUE(sources.count(topic)) << topic;
    EXPECT_EQ(composed->topology.SubTopologyOfSource(topic), commands_sub) << topic;
  }
  for (const char* store :
       {webhooks::kEndpointsStore, webhooks::kDeliveriesStore, webhooks::kHealthStore,
        webhooks::kCommandResultsStore, webhooks::kDeliveryTimersStore})
    EXPECT_TRUE(stores.count(store)) << store;
  auto schema = SnapshotSchemaOf(composed->apps);
  std::set<std::string> tables;
  for (const auto& t : schema.tables) tables.insert(t.table);
  EXPECT_TRUE(tables.count("usage_aggregates"));
  EXPECT_TRUE(schema.HasStore(usage::kAggregatesStore));
  EXPECT_FALSE(schema.HasStore(usage::kDedupStore));  // an index, not snapshotted
  // Webhooks: endpoints, and deliveries with their attempts from the one deliveries store.
  for (const char* table :
       {"teams_teams", "webhooks_endpoints", "webhooks_deliveries", "webhooks_attempts"})
    EXPECT_TRUE(tables.count(table)) << table;
  EXPECT_TRUE(schema.HasStore(webhooks::kEndpointsStore));
  EXPECT_TRUE(schema.HasStore(webhooks::kDeliveriesStore));
  EXPECT_FALSE(schema.HasStore(webhooks::kHealthStore));  // histograms, internal
  EXPECT_FALSE(schema.HasStore(webhooks::kCommandResultsStore));
}

// Teams refuses a team beyond the usage plan's maxTeams, and follows a plan change: both
// applications on one task of the composed topology, on the topology test driver.
TEST(CloudmatrixApplicationsTest, TheUsagePlanLimitsTeamsPerOrganization) {
  auto composed = Compose("cloudmatrix", "cm-test");
  ASSERT_TRUE(composed.ok()) << composed.status().ToString();
  topology::TestDriverOptions o;
  o.partitions = 2;
  auto driver = topology::TopologyTestDriver::Create(composed->topology, o);
  ASSERT_TRUE(driver.ok()) << driver.status().ToString();
  auto& d = **driver;
  int64_t now = 1'800'000'000'000;
  int next = 0;
  auto send = [&](nlohmann::json command, state::KeyValueStore* results) {
    const std::string id = "c" + std::to_string(++next);
    command["commandId"] = id;
    command["organizationId"] = "org-a";
    d.PipeInput("cloudmatrix.commands", "org-a", command.dump(), now += 1000);
    auto r = topology::CommandResults::Read(*results, id);
    return r ? r->value("status", 0) : 0;
  };
  auto& state = d.TaskFor("cloudmatrix.commands", "org-a").state();
  auto* teams_results = state.key_value_store(teams::kCommandResultsStore);
  auto* usage_results = state.key_value_store(usage::kCommandResultsStore);
  auto create = [&](int i) {
    return send({{"type", teams::kCreateTeam},
                 {"actorUserId", "alice"},
                 {"name", "team " + std::to_string(i)}},
                teams_results);
  };
  const auto free_limit = *usage::DefaultCatalog().FindPlan("free")->max_teams;
  for (int i = 0; i < free_limit; ++i) ASSERT_EQ(create(i), 201) << i;
  EXPECT_EQ(create(-1), 429);  // the free plan (the default) is full
  ASSERT_EQ(send({{"type", usage::kSetPlanCommand}, {"plan", "enterprise"}}, usage_results), 200);
  EXPECT_EQ(create(-2), 201);  // enterprise has no team limit
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

// The limit flags of `run` and `backfill` (command_line.h) reach the usage application through
// Compose; their defaults are usage::UsageLimits's.
TEST(CloudmatrixApplicationsTest, LimitFlagsParseToTheUsageLimitsAndCheckThemAgainstTheBody) {
  const uint64_t body = 1 << 20;  // --http-max-body's default
  auto defaults = ParseLimitFlags(LimitFlags{}, body, false);
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  const usage::UsageLimits expected;
  EXPECT_EQ(defaults->max_event_bytes, expected.max_event_bytes);
  EXPECT_EQ(defaults->max_batch_events, expected.max_batch_events);
  EXPECT_EQ(defaults->max_json_depth, expected.max_json_depth);
  EXPECT_EQ(defaults->max_id_bytes, expected.max_id_bytes);
  EXPECT_EQ(defaults->max_query_buckets, expected.max_query_buckets);
  EXPECT_EQ(defaults->max_report_range_ms, expected.max_report_range_ms);

  LimitFlags f;
  f.max_event_bytes = "1MiB";  // as large as a body may be
  f.max_report_range = "31d";
  auto set = ParseLimitFlags(f, body, false);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->max_event_bytes, body);
  EXPECT_EQ(set->max_report_range_ms, 31LL * 86'400'000);
  f.max_event_bytes = "1048577";
  auto over = ParseLimitFlags(f, body, false);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), state::Status::Code::kInvalidArgument);
  EXPECT_NE(over.status().message().find("--http-max-body"), std::string::npos);

  // The embedded broker keeps 5 MiB a partition: its default event is 4 KiB (EmbeddedBrokerTest
  // shows 1,000 of them fit), and a limit given on the command line still wins.
  auto embedded = ParseLimitFlags(LimitFlags{}, body, true);
  ASSERT_TRUE(embedded.ok()) << embedded.status().ToString();
  EXPECT_EQ(embedded->max_event_bytes, 4096u);
  EXPECT_EQ(embedded->max_batch_events, expected.max_batch_events);
  f.max_event_bytes = "64KiB";
  auto chosen = ParseLimitFlags(f, body, true);
  ASSERT_TRUE(chosen.ok()) << chosen.status().ToString();
  EXPECT_EQ(chosen->max_event_bytes, 64u * 1024);

  // Limits that reach Compose unchecked are still refused there.
  auto composed = Compose(
      "cloudmatrix", "x",
      {.usage_limits = {.max_batch_events = 0}, .teams = {}, .webhooks = {}, .counting = {}});
  ASSERT_FALSE(composed.ok());
  EXPECT_EQ(composed.status().code(), state::Status::Code::kInvalidArgument);
  EXPECT_TRUE(Compose("cloudmatrix", "x",
                      {.usage_limits = *set, .teams = {}, .webhooks = {}, .counting = {}})
                  .ok());
}

}  // namespace
}  // namespace cm::cloudmatrix
