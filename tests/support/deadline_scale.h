#pragma once

namespace cm::testing {

// The asan preset's unoptimized, instrumented processes run several times slower: a progress
// deadline stretches with them, so that it still says "stuck" and not "slow".
#ifdef CM_TESTS_SANITIZED
inline constexpr int kDeadlineScale = 4;
#else
inline constexpr int kDeadlineScale = 1;
#endif

}  // namespace cm::testing
