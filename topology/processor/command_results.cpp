#include "topology/processor/command_results.h"

#include <vector>

#include "state/key_codec.h"
#include "topology/common/timestamp.h"

namespace cm::topology {

namespace {

constexpr char kResultTag = 'c';
constexpr char kExpiryTag = 'x';

std::string ExpiryKey(int64_t applied_at, std::string_view command_id) {
  std::string k(1, kExpiryTag);
  state::AppendOrderedInt64(k, applied_at);
  k.append(command_id);
  return k;
}

}  // namespace

nlohmann::json ErrorBody(std::string_view code, std::string_view message, nlohmann::json details) {
  if (details.is_null()) details = nlohmann::json::object();
  return {{"error", {{"code", code}, {"message", message}, {"details", std::move(details)}}}};
}

std::string CommandResults::ResultKey(std::string_view command_id) {
  std::string k(1, kResultTag);
  k.append(command_id);
  return k;
}

std::optional<nlohmann::json> CommandResults::Read(state::ReadOnlyKeyValueStore& store,
                                                   std::string_view command_id) {
  auto v = store.Get(ResultKey(command_id));
  if (!v) return std::nullopt;
  auto j = nlohmann::json::parse(*v, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

bool CommandResults::Applied(std::string_view command_id) const {
  return store_.Get(ResultKey(command_id)).has_value();
}

void CommandResults::Record(const Outcome& o) {
  nlohmann::json result = {{"commandId", o.command_id},
                           {"type", o.type},
                           {"organizationId", o.organization},
                           {"status", o.status},
                           {"body", o.body},
                           {"appliedAt", FormatTimestamp(o.applied_at_ms)}};
  if (o.request_hash) result["requestHash"] = *o.request_hash;
  store_.Put(ResultKey(o.command_id), result.dump());
  store_.Put(ExpiryKey(o.applied_at_ms, o.command_id), "");
}

size_t CommandResults::ExpireBefore(int64_t cutoff_ms, size_t max) {
  // A scan is a RocksDB iterator; results live for days, so a second's delay costs nothing.
  // Unsigned, so cutoffs far apart cannot overflow the difference.
  if (last_cutoff_ms_ && cutoff_ms >= *last_cutoff_ms_ &&
      static_cast<uint64_t>(cutoff_ms) - static_cast<uint64_t>(*last_cutoff_ms_) <
          static_cast<uint64_t>(kExpiryStepMs))
    return 0;
  std::string begin(1, kExpiryTag);
  std::string end = begin;
  state::AppendOrderedInt64(end, cutoff_ms);
  std::vector<std::string> doomed;
  store_.Range(begin, end, [&](std::string_view k, std::string_view) {
    doomed.emplace_back(k);
    return doomed.size() < max;
  });
  for (const auto& k : doomed) {
    store_.Delete(ResultKey(std::string_view(k).substr(1 + 8)));
    store_.Delete(k);
  }
  last_cutoff_ms_ = doomed.size() < max ? std::optional(cutoff_ms) : std::nullopt;
  return doomed.size();
}

}  // namespace cm::topology
