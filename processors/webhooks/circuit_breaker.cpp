#include "processors/webhooks/circuit_breaker.h"

#include "topology/common/timestamp.h"

namespace cm::webhooks {

using nlohmann::json;

namespace {

std::optional<int64_t> OptMs(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

json MsOrNull(const std::optional<int64_t>& ms) { return ms ? json(*ms) : json(); }
json TimeOrNull(const std::optional<int64_t>& ms) {
  return ms ? json(topology::FormatTimestamp(*ms)) : json();
}

}  // namespace

std::string_view CircuitBreaker::StateName(State state) {
  switch (state) {
    case State::kClosed:
      return "closed";
    case State::kOpen:
      return "open";
    case State::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

CircuitBreaker CircuitBreaker::FromJson(const json& j) {
  CircuitBreaker c;
  if (!j.is_object()) return c;
  const std::string state = j.value("state", "closed");
  c.state_ = state == "open"        ? State::kOpen
             : state == "half_open" ? State::kHalfOpen
                                    : State::kClosed;
  c.failure_count_ = j.value("failureCount", 0);
  c.success_count_ = j.value("successCount", 0);
  c.last_failure_ms_ = OptMs(j, "lastFailureMs");
  c.opened_at_ms_ = OptMs(j, "openedAtMs");
  c.half_open_at_ms_ = OptMs(j, "halfOpenAtMs");
  c.probe_ = j.value("probe", "");
  return c;
}

json CircuitBreaker::ToJson() const {
  return {{"state", StateName(state_)},
          {"failureCount", failure_count_},
          {"successCount", success_count_},
          {"lastFailureMs", MsOrNull(last_failure_ms_)},
          {"openedAtMs", MsOrNull(opened_at_ms_)},
          {"halfOpenAtMs", MsOrNull(half_open_at_ms_)},
          {"probe", probe_}};
}

json CircuitBreaker::ToCircuitState(const std::string& webhook_id) const {
  return {{"webhookId", webhook_id},
          {"state", StateName(state_)},
          {"failureCount", failure_count_},
          {"successCount", success_count_},
          {"lastFailure", TimeOrNull(last_failure_ms_)},
          {"openedAt", TimeOrNull(opened_at_ms_)},
          {"halfOpenAt", TimeOrNull(half_open_at_ms_)}};
}

CircuitBreaker::Admission CircuitBreaker::Admit(const CircuitPolicy& policy,
                                                const std::string& delivery_id, int64_t now_ms) {
  (void)policy;
  switch (state_) {
    case State::kClosed:
      return {true, std::nullopt};
    case State::kOpen:
      if (half_open_at_ms_ && now_ms < *half_open_at_ms_) return {false, *half_open_at_ms_};
      state_ = State::kHalfOpen;
      success_count_ = 0;
      probe_ = delivery_id;
      return {true, std::nullopt};
    case State::kHalfOpen:
      if (probe_.empty() || probe_ == delivery_id) {
        probe_ = delivery_id;
        return {true, std::nullopt};
      }
      return {false, std::nullopt};
  }
  return {true, std::nullopt};
}

void CircuitBreaker::Open(const CircuitPolicy& policy, int64_t now_ms) {
  state_ = State::kOpen;
  opened_at_ms_ = now_ms;
  half_open_at_ms_ = now_ms + policy.cooldown_ms;
  success_count_ = 0;
  probe_.clear();
}

void CircuitBreaker::OnSuccess(const CircuitPolicy& policy, const std::string& delivery_id,
                               int64_t now_ms) {
  (void)now_ms;
  switch (state_) {
    case State::kClosed:
      failure_count_ = 0;
      break;
    case State::kHalfOpen:
      if (probe_ == delivery_id) probe_.clear();
      if (++success_count_ >= policy.success_threshold) {
        state_ = State::kClosed;
        failure_count_ = 0;
        success_count_ = 0;
        opened_at_ms_.reset();
        half_open_at_ms_.reset();
      }
      break;
    case State::kOpen:
      break;  // an attempt sent before the circuit opened
  }
}

void CircuitBreaker::OnFailure(const CircuitPolicy& policy, const std::string& delivery_id,
                               int64_t now_ms) {
  last_failure_ms_ = now_ms;
  ++failure_count_;
  switch (state_) {
    case State::kClosed:
      if (failure_count_ >= policy.failure_threshold) Open(policy, now_ms);
      break;
    case State::kHalfOpen:
      if (probe_ == delivery_id || probe_.empty()) Open(policy, now_ms);
      break;
    case State::kOpen:
      break;
  }
}

void CircuitBreaker::Release(const std::string& delivery_id) {
  if (probe_ == delivery_id) probe_.clear();
}

void CircuitBreaker::Reset() { *this = CircuitBreaker(); }

}  // namespace cm::webhooks
