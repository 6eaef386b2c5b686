#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace cm::topology {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// One JSON object per line on stderr: {"ts":..., "level":..., "event":..., <fields>}.
// Thread-safe; lines from different threads never interleave.
void Log(LogLevel level, std::string_view event, nlohmann::json fields = nlohmann::json::object());
void SetLogLevel(LogLevel level);
bool StderrIsTerminal();

}  // namespace cm::topology
