#pragma once

// One `cmstream` subcommand: its flags, bound to the object's own options when it is added to
// the command line, and what it does once they are parsed.
#include <CLI/CLI.hpp>
#include <memory>

namespace cm::cloudmatrix {

class Subcommand {
 public:
  explicit Subcommand(CLI::App* cli) : cli_(cli) {}
  virtual ~Subcommand() = default;
  Subcommand(const Subcommand&) = delete;
  Subcommand& operator=(const Subcommand&) = delete;

  // Whether the command line named this subcommand.
  bool selected() const { return static_cast<bool>(*cli_); }
  // The process exit code: 0 done, 1 failed, 2 bad flags, 130 interrupted.
  virtual int Execute() = 0;

 protected:
  CLI::App* cli_;
};

// Each adds its subcommand and flags to `app`; one file each (<name>_command.cpp).
// `run`: one instance of the application's consumer group.
std::unique_ptr<Subcommand> AddRunCommand(CLI::App& app);
// `backfill`: a second application id over a bounded range of the input, into its own stores
// (and Postgres schema), without side effects; prints a summary when done.
std::unique_ptr<Subcommand> AddBackfillCommand(CLI::App& app);
// `replay`: Kafka's application-reset tool for a stopped application.
std::unique_ptr<Subcommand> AddReplayCommand(CLI::App& app);
// `bridge`: the RabbitMQ bridge on its own, next to any number of instances.
std::unique_ptr<Subcommand> AddBridgeCommand(CLI::App& app);
// `broker`: the embedded Kafka-protocol broker, with an HTTP stand-in for the Admin API.
std::unique_ptr<Subcommand> AddBrokerCommand(CLI::App& app);
// `apikey`: API keys (create, list, revoke, token) through the broker.
std::unique_ptr<Subcommand> AddApiKeyCommand(CLI::App& app);
// `migrate`: the Postgres migrations, each once, in order.
std::unique_ptr<Subcommand> AddMigrateCommand(CLI::App& app);
// `webhook sign|verify`: Standard Webhooks signatures of a body, by hand.
std::unique_ptr<Subcommand> AddWebhookCommand(CLI::App& app);

}  // namespace cm::cloudmatrix
