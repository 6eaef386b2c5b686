#pragma once

#include <cstdint>
#include <string_view>

namespace cm::topology {

// How long retry `attempts` (>= 1: the first retry after one failure) waits: base·2^(attempts-1),
// at most max_ms, less up to `jitter` (0..1) of it. The jitter spreads the retries of things that
// failed together (an outage) and is derived from `key` and the attempt, not drawn at random, so
// processing stays a function of its inputs and a replay computes the same schedule.
int64_t ExponentialBackoffMs(int64_t base_ms, int64_t max_ms, int attempts, double jitter,
                             std::string_view key);

}  // namespace cm::topology
