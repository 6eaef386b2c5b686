#pragma once

#include <cstdint>
#include <string>

namespace cm::topology {

// ISO-8601 UTC with milliseconds ("2026-12-02T13:14:49.000Z"): how applications answer with
// times and how command results record when they were applied.
std::string FormatTimestamp(int64_t epoch_ms);

}  // namespace cm::topology
