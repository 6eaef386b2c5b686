#include "topology/common/json.h"

#include <string>

namespace cm::topology {

namespace {

// The deepest nesting of arrays and objects in `text`, outside strings; stops counting once
// past `limit`. Malformed text is left to the parser.
int NestingDepth(std::string_view text, int limit) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest && (deepest = depth) > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

state::Result<nlohmann::json> ParseJson(std::string_view text, int max_depth) {
  if (NestingDepth(text, max_depth) > max_depth) {
    return state::Status::InvalidArgument("JSON nested deeper than " + std::to_string(max_depth) +
                                          " levels");
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return state::Status::InvalidArgument("not valid JSON");
  return j;
}

}  // namespace cm::topology
