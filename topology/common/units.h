#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "state/status.h"

namespace cm::topology {

// "500ms", "5s", "1m", "2h", "1d"; a bare number is milliseconds.
state::Result<std::chrono::milliseconds> ParseDuration(std::string_view text);
// "256MiB", "1GiB", "64KiB", "1000000"; also MB/GB as powers of ten.
state::Result<uint64_t> ParseBytes(std::string_view text);

}  // namespace cm::topology
