#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cm::topology {

// How the entries of a task's stores become rows of snapshot tables (bridges/postgres writes
// them). The engine and the bridge only move bytes; the application that owns the stores says
// what the bytes mean (processors/usage/usage_snapshot_schema.h).
struct SnapshotTable {
  // One column value in Postgres' text input form (timestamps ISO-8601, JSON as text);
  // nullopt is NULL.
  using Field = std::optional<std::string>;
  using Row = std::vector<Field>;
  // Decodes one store entry. `value` is nullopt for a deleted key: then only the key columns
  // are needed (the rest may be left out). nullopt: the entry has no row in this table (an
  // index entry, or an entry of the other table the store feeds).
  using Decode = std::function<std::optional<Row>(std::string_view key,
                                                  std::optional<std::string_view> value)>;

  // For a table with several rows per store entry (a webhook delivery's attempts), set instead
  // of `decode`: all rows of an entry begin with the same `entry_columns` key columns, and when
  // the entry changes or goes, its rows replace every row that begins with them (so a row the
  // entry no longer yields goes too). With `value` nullopt: one row of those columns only.
  // nullopt: the entry has no rows in this table.
  using DecodeRows = std::function<std::optional<std::vector<Row>>(
      std::string_view key, std::optional<std::string_view> value)>;

  std::string store;                 // state store name
  std::string table;                 // table name (unqualified; the schema is configured)
  std::vector<std::string> columns;  // the columns Decode fills, key columns first
  size_t key_columns = 0;            // how many leading columns form the primary key
  Decode decode;
  size_t entry_columns = 0;  // decode_rows only: the leading key columns naming the entry
  DecodeRows decode_rows;
};

// Stores without a table are not snapshotted (dedup indexes, command results).
struct SnapshotSchema {
  std::vector<SnapshotTable> tables;

  bool HasStore(std::string_view store) const {
    for (const auto& t : tables) {
      if (t.store == store) return true;
    }
    return false;
  }
};

}  // namespace cm::topology
