// The cmstream command line: `run` joins an application's consumer group, `broker` hosts the
// embedded development broker, `bridge` moves RabbitMQ messages into Kafka, `migrate` applies
// the Postgres migrations, `replay` resets a stopped application, `backfill` runs a second
// application id over a bounded range of the input, `webhook sign|verify` signs a webhook body
// or checks its signature. Each lives in <name>_command.cpp. Flags have environment variables
// (CM_*) and may come from --config FILE (TOML or INI).
#include <CLI/CLI.hpp>
#include <memory>
#include <vector>

#include "processors/cloudmatrix/subcommand.h"

int main(int argc, char** argv) {
  CLI::App app{"cmstream: a stream processor for CloudMatrix usage, teams and webhooks"};
  app.set_config("--config", "", "read flags from a TOML or INI file");
  app.require_subcommand(1);
  std::vector<std::unique_ptr<cm::cloudmatrix::Subcommand>> commands;
  commands.push_back(cm::cloudmatrix::AddRunCommand(app));
  commands.push_back(cm::cloudmatrix::AddBrokerCommand(app));
  commands.push_back(cm::cloudmatrix::AddBridgeCommand(app));
  commands.push_back(cm::cloudmatrix::AddReplayCommand(app));
  commands.push_back(cm::cloudmatrix::AddBackfillCommand(app));
  commands.push_back(cm::cloudmatrix::AddMigrateCommand(app));
  commands.push_back(cm::cloudmatrix::AddApiKeyCommand(app));
  commands.push_back(cm::cloudmatrix::AddWebhookCommand(app));
  CLI11_PARSE(app, argc, argv);
  for (const auto& command : commands) {
    if (command->selected()) return command->Execute();
  }
  return 2;
}
