// ParseJson (topology/common/json): every JSON document from outside the process goes through
// it. Invariants: a refusal is an InvalidArgument value; an accepted document nests at most
// kMaxJsonDepth levels, and dumping it gives text that parses back to the same document.
#include <algorithm>
#include <vector>

#include "fuzz_check.h"
#include "topology/common/json.h"

namespace {

// Depth without recursion, so that a depth bug shows as a broken invariant, not a stack overflow.
int Depth(const nlohmann::json& root) {
  int deepest = 0;
  std::vector<std::pair<const nlohmann::json*, int>> todo{{&root, 0}};
  while (!todo.empty()) {
    auto [j, d] = todo.back();
    todo.pop_back();
    if (!j->is_structured()) continue;
    deepest = std::max(deepest, d + 1);
    for (const auto& child : *j) todo.emplace_back(&child, d + 1);
  }
  return deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using cm::topology::ParseJson;
  auto parsed = ParseJson(cm::fuzz::Bytes(data, size));
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == cm::state::Status::Code::kInvalidArgument,
               parsed.status().ToString());
    return 0;
  }
  FUZZ_CHECK(Depth(*parsed) <= cm::topology::kMaxJsonDepth, "accepted a document too deep");
  const std::string text = parsed->dump();
  auto again = ParseJson(text);
  FUZZ_CHECK(again.ok(), "its own dump was refused: " + text);
  FUZZ_CHECK(*again == *parsed, "dump and parse changed the document: " + text);
  return 0;
}
