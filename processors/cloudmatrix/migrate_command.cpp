#include <iostream>

#include "bridges/postgres/migrator.h"
#include "processors/cloudmatrix/subcommand.h"
#include "topology/common/log.h"

namespace cm::cloudmatrix {

using topology::Log;
using topology::LogLevel;

namespace {

class MigrateCommand final : public Subcommand {
 public:
  explicit MigrateCommand(CLI::App& app)
      : Subcommand(app.add_subcommand(
            "migrate",
            "apply migrations/NNNN_name.sql to a Postgres schema, each once, in order")) {
    CLI::App* cmd = cli_;
    o_.migrations_dir = CM_MIGRATIONS_DIR;
    cmd->add_option("--database-url", o_.database_url, "Postgres URL")
        ->envname("DATABASE_URL")
        ->required();
    cmd->add_option("--database-schema", o_.schema, "schema (created if missing)")
        ->envname("CM_DATABASE_SCHEMA")
        ->capture_default_str();
    cmd->add_option("--migrations-dir", o_.migrations_dir, "where the .sql files are")
        ->envname("CM_MIGRATIONS_DIR")
        ->capture_default_str();
  }

  int Execute() override {
    auto result = postgres::Migrator::Run(o_);
    if (!result.ok()) {
      Log(LogLevel::kError, "migrate_failed", {{"error", result.status().ToString()}});
      std::cerr << "cmstream migrate: " << result.status().message() << '\n';
      return 1;
    }
    for (const auto& name : result->applied) std::cout << "applied " << name << '\n';
    std::cout << "schema " << o_.schema << ": " << result->applied.size() << " applied, "
              << result->already_applied.size() << " already applied\n";
    return 0;
  }

 private:
  postgres::MigratorOptions o_;
};

}  // namespace

std::unique_ptr<Subcommand> AddMigrateCommand(CLI::App& app) {
  return std::make_unique<MigrateCommand>(app);
}

}  // namespace cm::cloudmatrix
