#include "topology/common/backoff.h"

#include <algorithm>
#include <string>

#include "topology/common/crypto.h"

namespace cm::topology {

int64_t ExponentialBackoffMs(int64_t base_ms, int64_t max_ms, int attempts, double jitter,
                             std::string_view key) {
  int64_t delay = base_ms;
  for (int i = 1; i < attempts && delay < max_ms; ++i) delay *= 2;
  delay = std::min(delay, max_ms);
  const std::string h = Sha256(std::string(key) + '\0' + std::to_string(attempts));
  const double u =
      (static_cast<unsigned char>(h[0]) * 256 + static_cast<unsigned char>(h[1])) / 65536.0;
  return delay - static_cast<int64_t>(static_cast<double>(delay) * jitter * u);
}

}  // namespace cm::topology
