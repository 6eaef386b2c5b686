// The engine's byte codecs: state/key_codec (every store key) and the changelog values the
// runtime decodes on restore: the outbox (topology/runtime/outbox) and reset markers
// (topology/runtime/reset_marker). The first byte picks the codec, the rest is the input:
//   0  key_codec: fixed-width integers round-trip, ordered encodings sort as their values,
//      PrefixSuccessor bounds every key with the prefix, SaturatingAdd clamps
//   1  DecodeOutbox: Corruption or outputs that re-encode to the same bytes
//   2  ResetMarker::Decode: Corruption or a marker that re-encodes to one equal to it
#include <limits>

#include "fuzz_check.h"
#include "state/key_codec.h"
#include "topology/runtime/outbox.h"
#include "topology/runtime/reset_marker.h"

namespace {

using namespace cm;

void KeyCodec(std::string_view b) {
  if (b.size() < 16) return;
  const uint64_t u = state::ReadUint64(b);
  std::string out;
  state::AppendUint64(out, u);
  FUZZ_CHECK(out == b.substr(0, 8), "uint64 round trip");
  const int64_t x = state::ReadOrderedInt64(b);
  const int64_t y = state::ReadOrderedInt64(b.substr(8));
  std::string ex, ey;
  state::AppendOrderedInt64(ex, x);
  state::AppendOrderedInt64(ey, y);
  FUZZ_CHECK(ex == b.substr(0, 8) && ey == b.substr(8, 8), "ordered int64 round trip");
  FUZZ_CHECK((ex < ey) == (x < y), "ordered int64 encodings sort differently from the values");
  std::string len;
  state::AppendLength32(len, state::ReadLength32(b));
  FUZZ_CHECK(len == b.substr(0, 4), "length32 round trip");
  const __int128 wide = static_cast<__int128>(x) + y;
  const __int128 clamped =
      std::min<__int128>(std::max<__int128>(wide, std::numeric_limits<int64_t>::min()),
                         std::numeric_limits<int64_t>::max());
  FUZZ_CHECK(state::SaturatingAdd(x, y) == clamped, "SaturatingAdd does not clamp");
  // The prefix is the first half of the rest, a key with that prefix the whole rest.
  const std::string_view rest = b.substr(16);
  const std::string_view prefix = rest.substr(0, rest.size() / 2);
  const std::string succ = state::PrefixSuccessor(prefix);
  if (succ.empty()) {
    FUZZ_CHECK(prefix.find_first_not_of('\xff') == std::string_view::npos,
               "no successor for a prefix that has one");
  } else {
    FUZZ_CHECK(rest < succ && prefix < succ, "PrefixSuccessor is not above every key");
  }
}

void Outbox(std::string_view b) {
  std::vector<topology::PendingOutput> outputs;
  if (!topology::DecodeOutbox(b, outputs).ok()) return;
  std::string again;
  for (const auto& chunk : topology::EncodeOutbox(outputs, std::numeric_limits<size_t>::max()))
    again += chunk;
  FUZZ_CHECK(again == b, "outbox decode/encode round trip");
}

void Reset(std::string_view b) {
  auto m = topology::ResetMarker::Decode(b);
  if (!m.ok()) {
    FUZZ_CHECK(m.status().code() == state::Status::Code::kCorruption, m.status().ToString());
    return;
  }
  auto again = topology::ResetMarker::Decode(m->Encode());
  FUZZ_CHECK(again.ok(), again.status().ToString());
  FUZZ_CHECK(again->id == m->id && again->created_ms == m->created_ms && again->from == m->from &&
                 again->offsets == m->offsets && again->published == m->published,
             "reset marker encode/decode round trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes = cm::fuzz::Bytes(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      KeyCodec(bytes);
      break;
    case 1:
      Outbox(bytes);
      break;
    default:
      Reset(bytes);
      break;
  }
  return 0;
}
