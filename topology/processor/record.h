#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cm::topology {

struct Header {
  std::string key;
  std::string value;
};

// One record as processors see it. Source records carry where they came from; records a
// processor creates leave topic/partition/offset unset.
struct Record {
  std::string key;
  std::string value;
  int64_t timestamp_ms = 0;
  std::vector<Header> headers;

  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;

  // The last header with that key.
  std::optional<std::string_view> FindHeader(std::string_view name) const {
    for (auto it = headers.rbegin(); it != headers.rend(); ++it) {
      if (it->key == name) return it->value;
    }
    return std::nullopt;
  }
};

}  // namespace cm::topology
