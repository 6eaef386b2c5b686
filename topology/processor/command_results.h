#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "state/key_value_store.h"

namespace cm::topology {

// The processor's half of the command protocol (DESIGN.md §6): the task that applies a command
// records its outcome under the command id, in the same transaction as the command's effects,
// so a retried command (same id) is answered again instead of applied twice, and the HTTP edge
// reads the result back (CommandSender::Submit). Results expire after a retention, oldest
// first, through a time index in the same store.
//
// Keys: 'c' commandId -> {commandId, type, organizationId, status, body, requestHash,
// appliedAt}; 'x' ordered appliedAt commandId -> "" (the expiry index).
// {"error": {"code", "message", "details"}}: the body of a refused command (DESIGN §6).
nlohmann::json ErrorBody(std::string_view code, std::string_view message,
                         nlohmann::json details = nlohmann::json::object());

class CommandResults {
 public:
  explicit CommandResults(state::KeyValueStore& store) : store_(store) {}

  static std::string ResultKey(std::string_view command_id);
  // The recorded result of a command, nullopt when none is (or it is unreadable).
  static std::optional<nlohmann::json> Read(state::ReadOnlyKeyValueStore& store,
                                            std::string_view command_id);

  bool Applied(std::string_view command_id) const;

  struct Outcome {
    std::string command_id;
    std::string type;
    std::string organization;  // empty for a command addressed to a whole task
    int status = 200;
    nlohmann::json body;
    std::optional<std::string> request_hash;  // what the edge compares a retry's request with
    int64_t applied_at_ms = 0;
  };
  void Record(const Outcome& outcome);

  // Deletes up to `max` results applied before `cutoff_ms`; returns how many. Punctuators call
  // it every few milliseconds: it looks at the store again only once the cutoff has moved
  // kExpiryStepMs since its last look (or that look stopped at `max`), so a result may outlive
  // its retention by up to that step.
  size_t ExpireBefore(int64_t cutoff_ms, size_t max = 1000);

  static constexpr int64_t kExpiryStepMs = 1000;

 private:
  state::KeyValueStore& store_;
  std::optional<int64_t> last_cutoff_ms_;  // of the last look that did not stop at `max`
};

}  // namespace cm::topology
