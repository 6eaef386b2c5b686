#include "topology/common/units.h"

#include <charconv>
#include <cstdint>
#include <string>
#include <utility>

namespace cm::topology {

using state::Result;
using state::Status;

namespace {

// Splits "123unit" into the number and its unit.
Result<std::pair<uint64_t, std::string_view>> SplitNumber(std::string_view text) {
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data()) {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' does not start with a whole number");
  }
  return std::make_pair(value, text.substr(static_cast<size_t>(ptr - text.data())));
}

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  auto split = SplitNumber(text);
  if (!split.ok()) return split.status();
  auto [n, unit] = split.value();
  uint64_t factor = 0;
  if (unit.empty() || unit == "ms")
    factor = 1;
  else if (unit == "s")
    factor = 1000;
  else if (unit == "m")
    factor = 60'000;
  else if (unit == "h")
    factor = 3'600'000;
  else if (unit == "d")
    factor = 86'400'000;
  else
    return Status::InvalidArgument("unknown duration unit in '" + std::string(text) +
                                   "' (ms, s, m, h, d)");
  if (n > static_cast<uint64_t>(INT64_MAX) / factor) {
    return Status::InvalidArgument("duration '" + std::string(text) + "' is too large");
  }
  return std::chrono::milliseconds(static_cast<int64_t>(n * factor));
}

Result<uint64_t> ParseBytes(std::string_view text) {
  auto split = SplitNumber(text);
  if (!split.ok()) return split.status();
  auto [n, unit] = split.value();
  uint64_t factor = 0;
  if (unit.empty() || unit == "B")
    factor = 1;
  else if (unit == "KiB")
    factor = 1ULL << 10;
  else if (unit == "MiB")
    factor = 1ULL << 20;
  else if (unit == "GiB")
    factor = 1ULL << 30;
  else if (unit == "KB")
    factor = 1000;
  else if (unit == "MB")
    factor = 1000'000;
  else if (unit == "GB")
    factor = 1000'000'000;
  else
    return Status::InvalidArgument("unknown size unit in '" + std::string(text) +
                                   "' (KiB, MiB, GiB, KB, MB, GB)");
  if (n > UINT64_MAX / factor)
    return Status::InvalidArgument("size '" + std::string(text) + "' is too large");
  return n * factor;
}

}  // namespace cm::topology
