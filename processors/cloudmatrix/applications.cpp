#include "processors/cloudmatrix/applications.h"

#include "processors/auth/auth_application.h"
#include "processors/cloudmatrix/plan_team_limits.h"
#include "processors/counting/counting_application.h"
#include "processors/teams/teams_application.h"
#include "processors/usage/usage_application.h"
#include "processors/webhooks/webhooks_application.h"

namespace cm::cloudmatrix {

state::Result<Composition> Compose(const std::string& name, const std::string& app_id,
                                   const CloudMatrixOptions& options) {
  Applications apps;
  // Every topology serves authenticated routes: the API keys come first.
  apps.push_back(std::make_unique<auth::AuthApplication>());
  if (name == "cloudmatrix") {
    usage::UsageOptions usage;
    usage.limits = options.usage_limits;
    // Teams limits organizations to their usage plan's maxTeams.
    teams::TeamsOptions teams = options.teams;
    teams.team_limits = std::make_shared<const PlanTeamLimits>(usage.catalog);
    apps.push_back(std::make_unique<usage::UsageApplication>(std::move(usage)));
    // After usage: teams hangs its processor on usage's source of cloudmatrix.commands.
    apps.push_back(std::make_unique<teams::TeamsApplication>(std::move(teams)));
    // Last: webhooks reads usage's source and the topics usage and teams write.
    apps.push_back(std::make_unique<webhooks::WebhooksApplication>(options.webhooks));
  } else if (name == "counting") {
    apps.push_back(std::make_unique<counting::CountingApplication>(options.counting));
  } else {
    return state::Status::InvalidArgument("unknown --topology '" + name +
                                          "' (counting, cloudmatrix)");
  }
  topology::TopologyBuilder builder;
  for (const auto& app : apps) {
    if (auto s = app->AddTo(builder); !s.ok()) return s;
  }
  auto topology = builder.Build(app_id);
  if (!topology.ok()) return topology.status();
  return Composition{std::move(apps), std::move(topology).value()};
}

topology::SnapshotSchema SnapshotSchemaOf(const Applications& apps) {
  topology::SnapshotSchema schema;
  for (const auto& app : apps) {
    auto own = app->snapshot_schema();
    for (auto& table : own.tables) schema.tables.push_back(std::move(table));
  }
  return schema;
}

}  // namespace cm::cloudmatrix
