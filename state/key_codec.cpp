#include "state/key_codec.h"

#include <limits>
#include <stdexcept>

namespace cm::state {

namespace {
constexpr uint64_t kSignBit = uint64_t{1} << 63;
}  // namespace

void AppendUint64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

uint64_t ReadUint64(std::string_view bytes) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) {
    u = (u << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return u;
}

void AppendOrderedInt64(std::string& out, int64_t v) {
  AppendUint64(out, static_cast<uint64_t>(v) ^ kSignBit);
}

int64_t ReadOrderedInt64(std::string_view bytes) {
  return static_cast<int64_t>(ReadUint64(bytes) ^ kSignBit);
}

void AppendLength32(std::string& out, size_t n) {
  if (n > std::numeric_limits<uint32_t>::max()) {
    throw std::length_error("cmstream state: key longer than 4 GiB");
  }
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((n >> shift) & 0xff));
  }
}

uint32_t ReadLength32(std::string_view bytes) {
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) {
    n = (n << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return n;
}

std::string PrefixSuccessor(std::string_view prefix) {
  std::string s(prefix);
  while (!s.empty()) {
    if (static_cast<uint8_t>(s.back()) != 0xff) {
      s.back() = static_cast<char>(static_cast<uint8_t>(s.back()) + 1);
      return s;
    }
    s.pop_back();  // 0xff cannot be incremented: carry into the previous byte
  }
  return s;
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  if (b > 0 && a > kMax - b) return kMax;
  if (b < 0 && a < kMin - b) return kMin;
  return a + b;
}

void AppendLengthPrefixed(std::string& out, std::string_view s) {
  AppendLength32(out, s.size());
  out.append(s);
}

bool ReadLengthPrefixed(std::string_view bytes, size_t& pos, std::string& out) {
  if (pos + 4 > bytes.size()) return false;
  const uint32_t n = ReadLength32(bytes.substr(pos));
  pos += 4;
  if (pos + n > bytes.size()) return false;
  out.assign(bytes.substr(pos, n));
  pos += n;
  return true;
}

std::string TaggedKey(char tag, std::initializer_list<std::string_view> fields) {
  std::string out(1, tag);
  for (auto f : fields) AppendLengthPrefixed(out, f);
  return out;
}

std::optional<std::vector<std::string>> ParseTaggedKey(std::string_view key, char tag,
                                                       size_t count) {
  if (key.empty() || key[0] != tag) return std::nullopt;
  std::vector<std::string> out(count);
  size_t pos = 1;
  for (auto& f : out) {
    if (!ReadLengthPrefixed(key, pos, f)) return std::nullopt;
  }
  if (pos != key.size()) return std::nullopt;
  return out;
}

}  // namespace cm::state
