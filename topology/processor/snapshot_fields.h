#pragma once

// Helpers for applications' snapshot decoders (snapshot_schema.h): JSON store values to
// Postgres text fields.
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "topology/processor/snapshot_schema.h"

namespace cm::topology {

// The value as a JSON object, nullopt when it is not one.
std::optional<nlohmann::json> SnapshotObject(std::string_view value);
// A field as Postgres text: strings as they are, numbers and booleans as JSON writes them
// (which Postgres reads), objects and arrays as JSON; missing or null is NULL.
SnapshotTable::Field SnapshotText(const nlohmann::json& j, const char* field);
// A number field as an integer or a double in text, or NULL; anything else is NULL too, so a
// bad value cannot fail the snapshot's COPY.
SnapshotTable::Field SnapshotNumber(const nlohmann::json& j, const char* field);
SnapshotTable::Field SnapshotBool(const nlohmann::json& j, const char* field, bool fallback);

}  // namespace cm::topology
