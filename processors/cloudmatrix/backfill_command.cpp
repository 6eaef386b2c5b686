#include <iostream>

#include "processors/cloudmatrix/run_command.h"
#include "processors/cloudmatrix/subcommand.h"
#include "processors/usage/time_util.h"

namespace cm::cloudmatrix {

namespace {

class BackfillCommand final : public Subcommand {
 public:
  explicit BackfillCommand(CLI::App& app)
      : Subcommand(app.add_subcommand(
            "backfill", "run a second application id over a bounded range of the input")) {
    CLI::App* cmd = cli_;
    o_.http = "";             // no HTTP API unless asked for
    o_.database_schema = "";  // never the live application's by default
    AddBrokerFlags(cmd, o_.cluster);
    cmd->add_option("--app-id", o_.app_id, "the backfill's own application id (not the live one's)")
        ->envname("CM_BACKFILL_APP_ID")
        ->required();
    cmd->add_option("--from", request_.from_text, "range start, ISO-8601 (inclusive)")
        ->envname("CM_BACKFILL_FROM")
        ->required();
    cmd->add_option("--to", request_.to_text, "range end, ISO-8601 (exclusive)")
        ->envname("CM_BACKFILL_TO")
        ->required();
    cmd->add_option("--exit-when-done", request_.exit_when_done,
                    "exit 0 when the range is processed; false keeps the HTTP API up")
        ->envname("CM_BACKFILL_EXIT_WHEN_DONE")
        ->capture_default_str();
    cmd->add_option("--http", o_.http, "HOST:PORT of a read-only HTTP API")
        ->envname("CM_BACKFILL_HTTP");
    cmd->add_option("--instance-id", o_.instance_id, "default host-backfill")
        ->envname("CM_INSTANCE_ID");
    AddEngineFlags(cmd, o_);
    // No environment variables here: a backfill must never inherit the live application's
    // snapshot target by accident.
    cmd->add_option("--database-url", o_.database_url,
                    "Postgres URL: snapshot the backfill's stores there");
    cmd->add_option("--database-schema", o_.database_schema,
                    "its own Postgres schema (required with --database-url; migrate it first)");
    cmd->add_option("--snapshot-interval", o_.snapshot_interval,
                    "how often changed rows are written to Postgres")
        ->capture_default_str();
  }

  int Execute() override {
    if (o_.cluster.brokers.empty()) {
      std::cerr << "backfill: give --brokers (and --broker-admin for a `cmstream broker`)\n";
      return 2;
    }
    auto from = usage::ParseTimestampString(request_.from_text);
    auto to = usage::ParseTimestampString(request_.to_text);
    if (!from.ok() || !to.ok() || *from >= *to) {
      std::cerr << "backfill: --from and --to must be ISO-8601 times with --from before --to\n";
      return 2;
    }
    if (!o_.database_url.empty() &&
        (o_.database_schema.empty() || o_.database_schema == "public")) {
      std::cerr << "backfill: --database-url needs --database-schema naming the backfill's own "
                   "schema (not the live application's)\n";
      return 2;
    }
    request_.from_ms = *from;
    request_.to_ms = *to;
    return RunInstance(o_, &request_);
  }

 private:
  RunOptions o_;
  BackfillRequest request_;
};

}  // namespace

std::unique_ptr<Subcommand> AddBackfillCommand(CLI::App& app) {
  return std::make_unique<BackfillCommand>(app);
}

}  // namespace cm::cloudmatrix
