#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "state/key_value_store.h"
#include "state/status.h"
#include "topology/processor/processor.h"

namespace cm::teams {

// The repartition topic <app-id>-teams-user-teams-repartition: memberships keyed by userId.
inline constexpr char kUserTeamsRepartition[] = "teams-user-teams";
inline constexpr char kUserIndexSourceNode[] = "teams-user-index-source";
inline constexpr char kUserTeamsProcessorNode[] = "teams-user-teams";

// Keeps the user index (teams-user-teams, teams_stores.h) from the memberships the teams
// processor re-keys by userId. Every change of one membership comes from the task of its
// organization, in order, through one partition, so the index ends where the memberships are.
class UserTeamsProcessor final : public topology::Processor {
 public:
  void Init(topology::ProcessorContext& context) override;
  void Process(const topology::Record& record) override;

 private:
  topology::ProcessorContext* context_ = nullptr;
  state::KeyValueStore* index_ = nullptr;
};

// getUserTeams over a user index: {userId, teams: [membership + organizationId, teamName,
// visibility], total, hasMore, nextCursor}, ordered by organization then team id. `visible`
// says which entries the caller may see; `cursor` is a previous answer's nextCursor.
struct UserTeamsPage {
  std::string user;
  std::string cursor;
  size_t limit = 50;
};
state::Result<nlohmann::json> GetUserTeams(
    state::ReadOnlyKeyValueStore& index, const UserTeamsPage& page,
    const std::function<bool(const nlohmann::json&)>& visible);

}  // namespace cm::teams
