#include "processors/usage/hyper_log_log.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace cm::usage {

uint64_t Hash64(std::string_view bytes) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h ^= bytes.size();
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

void HyperLogLog::AddHash(uint64_t hash) {
  const uint32_t index = static_cast<uint32_t>(hash >> (64 - kPrecision));
  const uint64_t rest = (hash << kPrecision) | (uint64_t{1} << (kPrecision - 1));  // guard bit
  const uint8_t rank = static_cast<uint8_t>(std::countl_zero(rest) + 1);
  SetRegister(index, rank);
}

void HyperLogLog::SetRegister(uint32_t index, uint8_t rank) {
  if (!dense_.empty()) {
    dense_[index] = std::max(dense_[index], rank);
    return;
  }
  auto it = std::lower_bound(sparse_.begin(), sparse_.end(), index << 6);
  if (it != sparse_.end() && (*it >> 6) == index) {
    if ((*it & 63u) < rank) *it = (index << 6) | rank;
    return;
  }
  sparse_.insert(it, (index << 6) | rank);
  if (sparse_.size() > kSparseLimit) ToDense();
}

void HyperLogLog::ToDense() {
  dense_.assign(kRegisters, 0);
  for (uint32_t e : sparse_) dense_[e >> 6] = static_cast<uint8_t>(e & 63u);
  sparse_.clear();
  sparse_.shrink_to_fit();
}

void HyperLogLog::Merge(const HyperLogLog& other) {
  if (!other.dense_.empty()) {
    if (dense_.empty()) ToDense();
    for (uint32_t i = 0; i < kRegisters; ++i) dense_[i] = std::max(dense_[i], other.dense_[i]);
    return;
  }
  for (uint32_t e : other.sparse_) SetRegister(e >> 6, static_cast<uint8_t>(e & 63u));
}

double HyperLogLog::Estimate() const {
  constexpr double m = kRegisters;
  const double alpha = 0.7213 / (1.0 + 1.079 / m);
  double sum = 0;
  uint32_t zeros = 0;
  if (dense_.empty()) {
    zeros = kRegisters - static_cast<uint32_t>(sparse_.size());
    sum = zeros;
    for (uint32_t e : sparse_) sum += std::ldexp(1.0, -static_cast<int>(e & 63u));
  } else {
    for (uint8_t r : dense_) {
      if (r == 0) ++zeros;
      sum += std::ldexp(1.0, -static_cast<int>(r));
    }
  }
  if (zeros == kRegisters) return 0;
  const double raw = alpha * m * m / sum;
  if (raw <= 2.5 * m && zeros > 0) return m * std::log(m / zeros);  // linear counting
  return raw;
}

uint64_t HyperLogLog::EstimateRounded() const {
  return static_cast<uint64_t>(std::llround(Estimate()));
}

std::string HyperLogLog::Serialize() const {
  std::string out;
  if (dense_.empty()) {
    out.reserve(5 + sparse_.size() * 4);
    out.push_back('S');
    auto put32 = [&out](uint32_t v) {
      for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
    };
    put32(static_cast<uint32_t>(sparse_.size()));
    for (uint32_t e : sparse_) put32(e);
  } else {
    out.reserve(1 + kRegisters);
    out.push_back('D');
    out.append(reinterpret_cast<const char*>(dense_.data()), dense_.size());
  }
  return out;
}

std::optional<HyperLogLog> HyperLogLog::Deserialize(std::string_view b) {
  HyperLogLog h;
  if (b.empty()) return h;
  auto get32 = [&b](size_t pos) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(b[pos + i]);
    return v;
  };
  if (b[0] == 'S') {
    if (b.size() < 5) return std::nullopt;
    uint32_t n = get32(1);
    if (b.size() != 5 + size_t{n} * 4 || n > kSparseLimit) return std::nullopt;
    h.sparse_.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t e = get32(5 + size_t{i} * 4);
      if ((e >> 6) >= kRegisters || (!h.sparse_.empty() && (h.sparse_.back() >> 6) >= (e >> 6))) {
        return std::nullopt;
      }
      h.sparse_.push_back(e);
    }
    return h;
  }
  if (b[0] == 'D' && b.size() == 1 + kRegisters) {
    h.dense_.assign(reinterpret_cast<const uint8_t*>(b.data() + 1),
                    reinterpret_cast<const uint8_t*>(b.data() + b.size()));
    return h;
  }
  return std::nullopt;
}

}  // namespace cm::usage
