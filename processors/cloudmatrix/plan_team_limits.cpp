#include "processors/cloudmatrix/plan_team_limits.h"

#include "processors/usage/org_settings.h"
#include "processors/usage/usage_stores.h"

namespace cm::cloudmatrix {

std::vector<std::string> PlanTeamLimits::stores() const { return {usage::kOrgsStore}; }

std::optional<teams::TeamLimit> PlanTeamLimits::For(topology::ProcessorContext& context,
                                                    const std::string& org, int64_t now) const {
  auto settings = usage::OrgSettings::Load(context.GetKeyValueStore(usage::kOrgsStore), org);
  const std::string plan_name = settings.PlanAt(now, catalog_);
  const usage::Plan* plan = catalog_.FindPlan(plan_name);
  if (!plan || !plan->max_teams) return std::nullopt;
  return teams::TeamLimit{*plan->max_teams, "plan " + plan_name};
}

}  // namespace cm::cloudmatrix
