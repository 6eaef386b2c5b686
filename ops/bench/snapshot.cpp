// Postgres snapshot write speed: 1,000,000 usage aggregate rows written through the
// Snapshotter's write path (SnapshotWriter: decode, COPY into a staging table, upsert, offsets
// row, one transaction) against `psql \copy` of the same rows into the same table, per run.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <pqxx/pqxx>

#include "bench_common.h"
#include "bridges/postgres/migrator.h"
#include "bridges/postgres/snapshot_writer.h"
#include "processors/usage/aggregate.h"
#include "processors/usage/usage_snapshot_schema.h"
#include "processors/usage/usage_stores.h"

namespace {

using namespace cm;
using bench::Clock;
using bench::Say;

// `rows` aggregates: minute buckets of count and sum metrics over 100 organizations, as the
// usage processor stores them (key and value encodings of processors/usage/usage_stores.h).
postgres::StoreChanges MakeAggregates(size_t rows) {
  postgres::StoreChanges changes;
  auto& store = changes[usage::kAggregatesStore];
  store.reserve(rows);
  const int64_t start = 1'700'000'000'000 / usage::kMinuteMs * usage::kMinuteMs;
  const char* metrics[] = {"api_calls", "storage_bytes", "documents", "compute_seconds"};
  for (size_t i = 0; store.size() < rows; ++i) {
    const std::string org = "org-" + std::to_string(i % 100);
    const char* metric = metrics[(i / 100) % 4];
    const bool sum =
        metric == std::string("storage_bytes") || metric == std::string("compute_seconds");
    const auto kind = sum ? usage::Aggregation::kSum : usage::Aggregation::kCount;
    const int64_t bucket = start + static_cast<int64_t>(i / 400) * usage::kMinuteMs;
    usage::Aggregate a;
    for (size_t e = 0; e < 1 + i % 5; ++e) {
      a.AddEvent(kind, 1.25 * static_cast<double>(e + i % 7), "", bucket, "e");
    }
    store.emplace(
        usage::keys::AggregateKey(org, metric, usage::Granularity::kMinute, "", bucket, {}),
        a.Encode(kind));
  }
  return changes;
}

void Exec(const std::string& url, const std::string& sql) {
  pqxx::connection conn(url);
  pqxx::nontransaction tx(conn);
  tx.exec(sql);
}

int64_t Count(const std::string& url, const std::string& table) {
  pqxx::connection conn(url);
  pqxx::nontransaction tx(conn);
  return tx.exec("SELECT count(*) FROM " + table)[0][0].as<int64_t>();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Postgres snapshot write path against psql \\copy of the same rows"};
  size_t rows = 1'000'000;
  int runs = 3;
  std::string url = "postgresql://cmstream:cmstream@127.0.0.1:5432/cmstream";
  app.add_option("--rows", rows, "aggregate rows per run")->capture_default_str();
  app.add_option("--runs", runs, "runs")->capture_default_str();
  app.add_option("--database-url", url, "Postgres")->envname("DATABASE_URL")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const std::string schema = "bench_snapshot_" + std::to_string(::getpid());
  postgres::MigratorOptions mo;
  mo.database_url = url;
  mo.schema = schema;
  mo.migrations_dir = std::string(CM_SOURCE_DIR) + "/migrations";
  if (auto m = postgres::Migrator::Run(mo); !m.ok()) {
    std::fprintf(stderr, "migrate: %s\n", m.status().ToString().c_str());
    return 1;
  }
  const std::string table = schema + ".usage_aggregates";
  const topology::SnapshotSchema snapshot_schema =
      usage::UsageSnapshotSchema(usage::DefaultCatalog());

  Say("generating %zu aggregate rows\n", rows);
  postgres::TaskSnapshot snapshot;
  snapshot.task_id = "0_0";
  snapshot.changes = MakeAggregates(rows);
  snapshot.offsets = {{usage::kAggregatesStore, static_cast<int64_t>(rows)}};

  // The baseline's input: the very rows the writer produces, as a COPY text file.
  const std::string file = "/tmp/cmstream-bench-snapshot-" + std::to_string(::getpid()) + ".tsv";
  const topology::SnapshotTable* aggregates = nullptr;
  for (const auto& t : snapshot_schema.tables) {
    if (t.table == "usage_aggregates") aggregates = &t;
  }
  std::string columns;
  {
    std::ofstream out(file);
    for (const auto& c : aggregates->columns) columns += c + ",";
    columns += "task_id";
    for (const auto& [key, value] : snapshot.changes[usage::kAggregatesStore]) {
      auto row = aggregates->decode(key, std::string_view(*value));
      for (const auto& f : *row) out << *f << '\t';  // no field needs escaping here
      out << snapshot.task_id << '\n';
    }
  }

  bench::Table results(
      {{"snapshot rows/s", "%.0f"}, {"psql \\copy rows/s", "%.0f"}, {"ratio", "%.3f"}});
  bool ok = true;
  for (int run = 1; run <= runs; ++run) {
    Exec(url, "TRUNCATE " + table + ", " + schema + ".snapshot_tasks");
    const std::string copy_cmd = "psql -q -v ON_ERROR_STOP=1 '" + url + "' -c \"\\copy " + table +
                                 " (" + columns + ") FROM '" + file + "'\"";
    auto t0 = Clock::now();
    if (std::system(copy_cmd.c_str()) != 0) {
      std::fprintf(stderr, "psql \\copy failed\n");
      return 1;
    }
    const double copy_s = bench::Seconds(Clock::now() - t0);
    ok &= Count(url, table) == static_cast<int64_t>(rows);

    Exec(url, "TRUNCATE " + table + ", " + schema + ".snapshot_tasks");
    postgres::SnapshotWriter writer(
        snapshot_schema, {.database_url = url, .schema = schema, .copy_chunk_bytes = 1 << 20});
    auto t1 = Clock::now();
    auto written = writer.Write(snapshot);
    const double write_s = bench::Seconds(Clock::now() - t1);
    if (!written.ok() || *written != postgres::WriteOutcome::kWritten) {
      std::fprintf(stderr, "snapshot write failed: %s\n", written.status().ToString().c_str());
      return 1;
    }
    ok &= Count(url, table) == static_cast<int64_t>(rows);
    const double snap_rate = static_cast<double>(rows) / write_s;
    const double copy_rate = static_cast<double>(rows) / copy_s;
    Say("run %d: snapshot %.2f s, psql \\copy %.2f s\n", run, write_s, copy_s);
    results.Add("run " + std::to_string(run), {snap_rate, copy_rate, snap_rate / copy_rate});
  }
  results.AddMedian();
  results.Print(stdout);
  std::printf("check: %s (%zu rows in the table after every run)\n", ok ? "ok" : "FAILED", rows);
  Exec(url, "DROP SCHEMA " + schema + " CASCADE");
  std::remove(file.c_str());
  return ok ? 0 : 1;
}
