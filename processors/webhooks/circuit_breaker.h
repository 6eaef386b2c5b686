#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "processors/webhooks/webhooks_options.h"

namespace cm::webhooks {

// The circuit breaker of one endpoint, kept in the endpoint's record (so it is state, restored
// on fail-over). closed -> open after `failure_threshold` consecutive failures; open ->
// half_open once `cooldown_ms` has passed, letting one probe through at a time; half_open ->
// closed after `success_threshold` successful probes, back to open on a failed one. While it
// is open, due deliveries wait (they do not fail).
class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };
  static std::string_view StateName(State state);

  CircuitBreaker() = default;
  bool operator==(const CircuitBreaker&) const = default;
  static CircuitBreaker FromJson(const nlohmann::json& j);
  nlohmann::json ToJson() const;
  // The seeds' CircuitState: webhookId, state, failureCount, successCount, lastFailure,
  // openedAt, halfOpenAt (ISO-8601, null when unset).
  nlohmann::json ToCircuitState(const std::string& webhook_id) const;

  struct Admission {
    bool send = false;
    // When !send: when to ask again; none while a half-open circuit's probe is in flight (ask
    // once its outcome is in: the caller knows how long an attempt may take).
    std::optional<int64_t> retry_at_ms;
  };
  // Whether delivery `delivery_id`, due at `now_ms`, may be sent now. An open circuit past its
  // cool-down turns half-open and admits this delivery as its probe.
  Admission Admit(const CircuitPolicy& policy, const std::string& delivery_id, int64_t now_ms);
  void OnSuccess(const CircuitPolicy& policy, const std::string& delivery_id, int64_t now_ms);
  void OnFailure(const CircuitPolicy& policy, const std::string& delivery_id, int64_t now_ms);
  // The probe's outcome will not come (its attempt was lost or cancelled): admit another.
  void Release(const std::string& delivery_id);
  void Reset();

  State state() const { return state_; }
  int failure_count() const { return failure_count_; }
  int success_count() const { return success_count_; }
  const std::string& probe() const { return probe_; }
  std::optional<int64_t> half_open_at_ms() const { return half_open_at_ms_; }

 private:
  void Open(const CircuitPolicy& policy, int64_t now_ms);

  State state_ = State::kClosed;
  int failure_count_ = 0;  // consecutive failures
  int success_count_ = 0;  // consecutive successful probes while half-open
  std::optional<int64_t> last_failure_ms_;
  std::optional<int64_t> opened_at_ms_;
  std::optional<int64_t> half_open_at_ms_;
  std::string probe_;  // the half-open probe in flight
};

}  // namespace cm::webhooks
