#include "processors/usage/usage_commands.h"

#include "processors/usage/usage_stores.h"

namespace cm::usage {

nlohmann::json ErrorBody(std::string_view code, std::string_view message, nlohmann::json details) {
  if (details.is_null()) details = nlohmann::json::object();
  return {{"error", {{"code", code}, {"message", message}, {"details", std::move(details)}}}};
}

std::optional<nlohmann::json> ReadCommandResult(state::ReadOnlyKeyValueStore& command_results,
                                                std::string_view command_id) {
  auto v = command_results.Get(keys::CommandResultKey(command_id));
  if (!v) return std::nullopt;
  auto j = nlohmann::json::parse(*v, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

}  // namespace cm::usage
