#pragma once

#include <string>
#include <vector>

#include "state/status.h"

namespace cm::postgres {

struct MigratorOptions {
  std::string database_url;
  std::string schema = "public";  // created if missing; migrations run with it as search_path
  std::string migrations_dir;     // NNNN_name.sql files
};

struct MigrationResult {
  std::vector<std::string> applied;          // names applied by this run, in order
  std::vector<std::string> already_applied;  // names found in schema_migrations, unchanged
};

// Applies migrations/NNNN_name.sql in name order, each once, each in its own transaction,
// recording name, SHA-256 checksum and applied_at in <schema>.schema_migrations. A file whose
// checksum differs from the one recorded when it was applied is an error (Conflict), and so is
// a .sql file whose name does not follow NNNN_name.sql. Concurrent runs against the same
// schema take turns on a session advisory lock.
class Migrator {
 public:
  static state::Result<MigrationResult> Run(const MigratorOptions& options);
};

}  // namespace cm::postgres
