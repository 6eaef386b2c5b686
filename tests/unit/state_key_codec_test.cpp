// state/key_codec.h: the byte encodings whose bytewise order the stores rely on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "state/key_codec.h"

namespace cm::state {
namespace {

TEST(KeyCodecTest, Uint64IsEightBigEndianBytesAndReadsBack) {
  std::string out;
  AppendUint64(out, 0x0102030405060708ULL);
  EXPECT_EQ(out, std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{255}, uint64_t{1} << 63,
                     std::numeric_limits<uint64_t>::max()}) {
    std::string b;
    AppendUint64(b, v);
    ASSERT_EQ(b.size(), 8u);
    EXPECT_EQ(ReadUint64(b), v);
  }
}

TEST(KeyCodecTest, OrderedInt64SortsBytewiseInNumericOrder) {
  const std::vector<int64_t> values = {
      std::numeric_limits<int64_t>::min(), -1'000'000, -1, 0, 1, 1'000'000,
      std::numeric_limits<int64_t>::max()};
  std::vector<std::string> encoded;
  for (int64_t v : values) {
    std::string b;
    AppendOrderedInt64(b, v);
    EXPECT_EQ(ReadOrderedInt64(b), v);
    encoded.push_back(b);
  }
  EXPECT_TRUE(std::is_sorted(encoded.begin(), encoded.end()));
}

}  // namespace
}  // namespace cm::state
