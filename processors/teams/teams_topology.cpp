#include "processors/teams/teams_topology.h"

#include <memory>

#include "processors/teams/teams_processor.h"
#include "processors/teams/teams_stores.h"

namespace cm::teams {

state::Status AddTeamsTopology(topology::TopologyBuilder& builder, const TeamsOptions& options) {
  if (auto s = options.Validate(); !s.ok()) return s;
  auto shared = std::make_shared<const TeamsOptions>(options);
  if (options.own_source) builder.AddSource(options.source_node, {options.commands_topic});
  builder
      .AddProcessor(kTeamsProcessorNode,
                    [shared] { return std::make_unique<TeamsProcessor>(shared); },
                    {options.source_node})
      .AddSink(kTeamEventsSinkNode, options.team_events_topic, {kTeamsProcessorNode});
  for (auto& spec : TeamsStoreSpecs()) builder.AddStateStore(spec, {kTeamsProcessorNode});
  for (const char* name : {kInvitationTimersStore, kMailTimersStore}) {
    state::StoreSpec timers;
    timers.name = name;
    timers.type = state::StoreType::kTimer;
    timers.logged = true;
    builder.AddStateStore(timers, {kTeamsProcessorNode});
  }
  state::StoreSpec outbox;
  outbox.name = kMailOutboxStore;
  outbox.type = state::StoreType::kKeyValue;
  outbox.logged = true;
  builder.AddStateStore(outbox, {kTeamsProcessorNode});
  return state::Status::OK();
}

}  // namespace cm::teams
