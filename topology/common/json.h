#pragma once

// JSON from outside the process (HTTP bodies, records on input topics) is parsed here, so a
// hostile document cannot exhaust the stack: nlohmann's parser is iterative, but dump() and
// copies recurse once per level, and a 140 KB body of nested arrays is 70,000 levels.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "state/status.h"

namespace cm::topology {

// Deeper documents are refused before they are parsed. Real events and commands nest a few
// levels; 64 leaves room for any metadata a client means to send.
inline constexpr int kMaxJsonDepth = 64;

// The parsed document, or InvalidArgument saying why not ("not valid JSON", or nested deeper
// than `max_depth` arrays and objects).
state::Result<nlohmann::json> ParseJson(std::string_view text, int max_depth = kMaxJsonDepth);

// The string `j[field]`, or "" when `j` has no such field or it is not a string.
inline std::string StringField(const nlohmann::json& j, std::string_view field) {
  auto it = j.find(field);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace cm::topology
