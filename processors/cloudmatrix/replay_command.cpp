#include <iostream>

#include "processors/cloudmatrix/applications.h"
#include "processors/cloudmatrix/command_line.h"
#include "processors/cloudmatrix/subcommand.h"
#include "processors/usage/time_util.h"
#include "topology/tools/application_reset.h"

namespace cm::cloudmatrix {

namespace {

class ReplayCommand final : public Subcommand {
 public:
  explicit ReplayCommand(CLI::App& app)
      : Subcommand(app.add_subcommand(
            "replay",
            "reset a stopped application to the beginning or a time (Kafka's reset tool)")) {
    CLI::App* cmd = cli_;
    AddBrokerFlags(cmd, cluster_);
    cmd->add_option("--app-id", app_id_, "the application to reset")
        ->envname("CM_APP_ID")
        ->required();
    cmd->add_option("--state-dir", state_dir_, "its local state, deleted")
        ->envname("CM_STATE_DIR")
        ->capture_default_str();
    cmd->add_option("--topology", topology_, "the application's topology")
        ->envname("CM_TOPOLOGY")
        ->capture_default_str();
    cmd->add_flag("--from-beginning", from_beginning_, "move inputs to their beginning");
    cmd->add_option("--from", from_,
                    "move inputs to the first record at or after this ISO-8601 time");
    cmd->add_option("--to", to_, "not for replay: see backfill");
    cmd->add_flag("--dry-run", dry_run_, "print what would be done; change nothing");
  }

  int Execute() override {
    if (!to_.empty()) {
      std::cerr << "replay: --to bounds a backfill, not a replay: a replayed application is the "
                   "live one and goes on with new input. Use `cmstream backfill --app-id NEW "
                   "--from ... --to ...` to compute figures for a bounded range.\n";
      return 2;
    }
    if (from_beginning_ == !from_.empty()) {
      std::cerr << "replay: give exactly one of --from-beginning and --from ISO-8601\n";
      return 2;
    }
    topology::ResetOptions reset;
    if (!from_.empty()) {
      auto from = usage::ParseTimestampString(from_);
      if (!from.ok()) {
        std::cerr << "replay: --from: " << from.status().message() << '\n';
        return 2;
      }
      reset.from_ms = *from;
      reset.from_text = from_;
    }
    if (cluster_.brokers.empty()) {
      std::cerr << "replay: give --brokers (and --broker-admin for a `cmstream broker`)\n";
      return 2;
    }
    auto cluster = ConnectCluster(cluster_, false);
    if (!cluster.ok()) {
      std::cerr << cluster.status().message() << '\n';
      return 2;
    }
    auto composed = Compose(topology_, app_id_);
    if (!composed.ok()) {
      std::cerr << "replay: " << composed.status().message() << '\n';
      return 2;
    }
    reset.bootstrap_servers = cluster->bootstrap;
    reset.embedded_broker = cluster->embedded;
    reset.state_dir = state_dir_;
    topology::ApplicationReset resetter(composed->topology, reset, *cluster->admin);
    if (auto s = resetter.CheckStopped(); !s.ok()) {
      std::cerr << "replay refused: " << s.message() << '\n';
      return 1;
    }
    auto plan = resetter.Plan();
    if (!plan.ok()) {
      std::cerr << "replay: " << plan.status().ToString() << '\n';
      return 1;
    }
    std::cout << (dry_run_ ? "dry run, nothing is changed: " : "") << plan->Describe();
    if (dry_run_) return 0;
    if (auto s = resetter.Apply(*plan); !s.ok()) {
      std::cerr << "replay failed: " << s.ToString() << '\n';
      return 1;
    }
    std::cout << "done: the next `cmstream run --app-id " << app_id_
              << "` rebuilds every store from the new offsets\n";
    return 0;
  }

 private:
  BrokerFlags cluster_;
  std::string app_id_;
  std::string state_dir_ = "./data";
  std::string topology_ = "cloudmatrix";
  bool from_beginning_ = false;
  std::string from_;
  std::string to_;
  bool dry_run_ = false;
};

}  // namespace

std::unique_ptr<Subcommand> AddReplayCommand(CLI::App& app) {
  return std::make_unique<ReplayCommand>(app);
}

}  // namespace cm::cloudmatrix
