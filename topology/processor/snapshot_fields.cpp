#include "topology/processor/snapshot_fields.h"

#include <string>

namespace cm::topology {

using nlohmann::json;

std::optional<json> SnapshotObject(std::string_view value) {
  json j = json::parse(value, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  return j;
}

SnapshotTable::Field SnapshotText(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return it->is_string() ? it->get<std::string>() : it->dump();
}

SnapshotTable::Field SnapshotNumber(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->dump();
}

SnapshotTable::Field SnapshotBool(const json& j, const char* field, bool fallback) {
  auto it = j.find(field);
  return std::string(it != j.end() && it->is_boolean() ? (it->get<bool>() ? "true" : "false")
                                                       : (fallback ? "true" : "false"));
}

}  // namespace cm::topology
