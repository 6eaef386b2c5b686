#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "topology/processor/processor.h"

namespace cm::teams {

// How many teams an organization may have, and what says so (for the 429's message).
struct TeamLimit {
  int64_t max_teams = 0;
  std::string source;  // e.g. "plan free"
};

// Where the per-organization team limit comes from. Teams knows no plans: `cmstream run`
// supplies the usage plan's maxTeams (processors/cloudmatrix/plan_team_limits.h). Read on the
// teams processor's task, in the same transaction as the command, so a plan change applies
// from the next command on.
class TeamLimits {
 public:
  virtual ~TeamLimits() = default;
  // Stores of other applications that the lookup reads; the teams topology connects them to
  // the teams processor.
  virtual std::vector<std::string> stores() const = 0;
  // The limit of `org` at `now`; nullopt for none.
  virtual std::optional<TeamLimit> For(topology::ProcessorContext& context, const std::string& org,
                                       int64_t now) const = 0;
};

}  // namespace cm::teams
