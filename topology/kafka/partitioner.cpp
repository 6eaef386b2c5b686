#include "topology/kafka/partitioner.h"

#include <cassert>

namespace cm::topology {

uint32_t Murmur2(std::string_view data) {
  constexpr uint32_t kSeed = 0x9747b28c;
  constexpr uint32_t kM = 0x5bd1e995;
  constexpr int kR = 24;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  const auto length = static_cast<uint32_t>(data.size());
  uint32_t h = kSeed ^ length;
  const uint32_t blocks = length / 4;
  for (uint32_t i = 0; i < blocks; ++i) {
    const unsigned char* p = bytes + static_cast<size_t>(i) * 4;
    uint32_t k = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }
  const unsigned char* tail = bytes + static_cast<size_t>(blocks) * 4;
  switch (length % 4) {
    case 3:
      h ^= tail[2] << 16;
      [[fallthrough]];
    case 2:
      h ^= tail[1] << 8;
      [[fallthrough]];
    case 1:
      h ^= tail[0];
      h *= kM;
      break;
    default:
      break;
  }
  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return h;
}

int32_t PartitionForKey(std::string_view key, int32_t partition_count) {
  assert(partition_count > 0);
  return static_cast<int32_t>((Murmur2(key) & 0x7fffffffU) %
                              static_cast<uint32_t>(partition_count));
}

}  // namespace cm::topology
