#pragma once

#include <optional>
#include <string>
#include <vector>

#include "processors/teams/team_limits.h"
#include "processors/usage/metric_catalog.h"

namespace cm::cloudmatrix {

// The teams limit of `cmstream run --topology cloudmatrix`: the maxTeams of the usage plan an
// organization is on (usage-orgs, read on the same task, since both applications read the
// organization's partition of cloudmatrix.commands).
class PlanTeamLimits final : public teams::TeamLimits {
 public:
  explicit PlanTeamLimits(usage::Catalog catalog) : catalog_(std::move(catalog)) {}

  std::vector<std::string> stores() const override;
  std::optional<teams::TeamLimit> For(topology::ProcessorContext& context, const std::string& org,
                                      int64_t now) const override;

 private:
  usage::Catalog catalog_;
};

}  // namespace cm::cloudmatrix
