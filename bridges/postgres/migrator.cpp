#include "bridges/postgres/migrator.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <pqxx/pqxx>
#include <regex>
#include <sstream>

#include "bridges/postgres/postgres_url.h"
#include "topology/common/crypto.h"

namespace cm::postgres {

using state::Result;
using state::Status;

namespace {

struct Migration {
  std::string name;  // file name without .sql
  std::string sql;
  std::string checksum;
};

Result<std::vector<Migration>> LoadMigrations(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return Status::NotFound("migrations directory " + dir + " does not exist");
  }
  static const std::regex kName("^[0-9]{4}_[A-Za-z0-9_]+\\.sql$");
  std::vector<Migration> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string file = entry.path().filename().string();
    if (entry.path().extension() != ".sql") continue;
    if (!std::regex_match(file, kName)) {
      return Status::InvalidArgument("migration file " + file + " is not named NNNN_name.sql");
    }
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return Status::IOError("cannot read " + entry.path().string());
    Migration m{file.substr(0, file.size() - 4), text.str(), ""};
    m.checksum = topology::HexEncode(topology::Sha256(m.sql));
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(),
            [](const Migration& a, const Migration& b) { return a.name < b.name; });
  for (size_t i = 1; i < out.size(); ++i) {
    if (out[i].name.substr(0, 4) == out[i - 1].name.substr(0, 4)) {
      return Status::InvalidArgument("two migrations numbered " + out[i].name.substr(0, 4) + ": " +
                                     out[i - 1].name + ", " + out[i].name);
    }
  }
  return out;
}

}  // namespace

Result<MigrationResult> Migrator::Run(const MigratorOptions& options) {
  auto migrations = LoadMigrations(options.migrations_dir);
  if (!migrations.ok()) return migrations.status();
  MigrationResult result;
  std::string current;  // the migration being applied, for error messages
  try {
    pqxx::connection conn(WithConnectTimeout(options.database_url));
    const std::string schema = conn.quote_name(options.schema);
    {
      // One migrator per schema at a time; the lock goes with the session.
      pqxx::nontransaction nt(conn);
      nt.exec_params("SELECT pg_advisory_lock(hashtext($1))", "cmstream.migrate." + options.schema);
      nt.exec("CREATE SCHEMA IF NOT EXISTS " + schema);
      nt.exec("CREATE TABLE IF NOT EXISTS " + schema +
              ".schema_migrations (name text PRIMARY KEY, checksum text NOT NULL, "
              "applied_at timestamptz NOT NULL DEFAULT now())");
      nt.exec("SET search_path TO " + schema);
    }
    std::map<std::string, std::string> applied;
    {
      pqxx::read_transaction tx(conn);
      for (const auto& row : tx.exec("SELECT name, checksum FROM schema_migrations")) {
        applied[row[0].as<std::string>()] = row[1].as<std::string>();
      }
    }
    for (const auto& m : *migrations) {
      if (auto it = applied.find(m.name); it != applied.end()) {
        if (it->second != m.checksum) {
          return Status::Conflict("migration " + m.name +
                                  " was changed after it was applied (checksum " + it->second +
                                  " recorded, file has " + m.checksum +
                                  "); add a new migration instead of editing an applied one");
        }
        result.already_applied.push_back(m.name);
        continue;
      }
      current = m.name;
      pqxx::work tx(conn);
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", m.name,
                     m.checksum);
      tx.commit();
      result.applied.push_back(m.name);
    }
  } catch (const pqxx::broken_connection& e) {
    return Status::Unavailable(std::string("cannot reach Postgres: ") + e.what());
  } catch (const pqxx::sql_error& e) {
    return Status::InvalidArgument((current.empty() ? "migrate" : "migration " + current) +
                                   " failed: " + e.what());
  } catch (const std::exception& e) {
    return Status::IOError(std::string("migration failed: ") + e.what());
  }
  return result;
}

}  // namespace cm::postgres
