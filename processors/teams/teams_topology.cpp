#include "processors/teams/teams_topology.h"

#include <memory>

#include "processors/teams/teams_processor.h"
#include "processors/teams/teams_stores.h"
#include "processors/teams/user_teams_processor.h"

namespace cm::teams {

state::Status AddTeamsTopology(topology::TopologyBuilder& builder, const TeamsOptions& options) {
  if (auto s = options.Validate(); !s.ok()) return s;
  auto shared = std::make_shared<const TeamsOptions>(options);
  if (options.own_source)
    builder.AddSource(options.source_node, {options.commands_topic},
                      topology::SourcePartitioning::kByKey);
  builder
      .AddProcessor(kTeamsProcessorNode,
                    [shared] { return std::make_unique<TeamsProcessor>(shared); },
                    {options.source_node})
      .AddSink(kTeamEventsSinkNode, options.team_events_topic, {kTeamsProcessorNode})
      // getUserTeams: memberships re-keyed by user into the user index.
      .AddRepartitionSink(kUserIndexSinkNode, kUserTeamsRepartition, {kTeamsProcessorNode})
      .AddRepartitionSource(kUserIndexSourceNode, kUserTeamsRepartition)
      .AddProcessor(kUserTeamsProcessorNode, [] { return std::make_unique<UserTeamsProcessor>(); },
                    {kUserIndexSourceNode});
  for (auto& spec : TeamsStoreSpecs()) builder.AddStateStore(spec, {kTeamsProcessorNode});
  if (options.team_limits)
    builder.ConnectProcessorAndStateStores(kTeamsProcessorNode, options.team_limits->stores());
  // The teams processor is connected to the user index too, which keeps the index in the
  // commands' sub-topology (the repartition topic becomes a co-partitioned source of the same
  // tasks). As a sub-topology of its own, its tasks were balanced against the commands' tasks
  // as a whole (the engine subscribes one topic per sub-topology and cooperative-sticky
  // balances partitions, not sub-topologies), so one instance could get every organization.
  for (auto& spec : state::StoreSpec::Logged(state::StoreType::kKeyValue, {kUserTeamsStore}))
    builder.AddStateStore(spec, {kUserTeamsProcessorNode, kTeamsProcessorNode});
  for (auto& spec : state::StoreSpec::Logged(state::StoreType::kKeyValue, {kMailOutboxStore}))
    builder.AddStateStore(spec, {kTeamsProcessorNode});
  for (auto& spec : state::StoreSpec::Logged(state::StoreType::kTimer,
                                             {kInvitationTimersStore, kMailTimersStore}))
    builder.AddStateStore(spec, {kTeamsProcessorNode});
  return state::Status::OK();
}

}  // namespace cm::teams
