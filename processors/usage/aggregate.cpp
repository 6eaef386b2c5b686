#include "processors/usage/aggregate.h"

#include <cmath>
#include <cstring>

#include "state/key_codec.h"

namespace cm::usage {

const char* AggregationName(Aggregation a) {
  switch (a) {
    case Aggregation::kCount:
      return "count";
    case Aggregation::kSum:
      return "sum";
    case Aggregation::kUniqueCount:
      return "unique_count";
    case Aggregation::kMax:
      return "max";
    case Aggregation::kLatest:
      return "latest";
  }
  return "unknown";
}

std::optional<Aggregation> ParseAggregation(std::string_view name) {
  for (Aggregation a : {Aggregation::kCount, Aggregation::kSum, Aggregation::kUniqueCount,
                        Aggregation::kMax, Aggregation::kLatest}) {
    if (name == AggregationName(a)) return a;
  }
  return std::nullopt;
}

Nanos ToNanos(double value) {
  const double ip = std::floor(value);
  const double frac = value - ip;  // exact for |value| < 2^52
  return static_cast<Nanos>(static_cast<int64_t>(ip)) * kNanosPerUnit +
         static_cast<Nanos>(std::llround(frac * 1e9));
}

Nanos SaturatingAdd(Nanos a, Nanos b) {
  Nanos out;
  if (!__builtin_add_overflow(a, b, &out)) return out;
  // Only corrupted state gets here (1e15 per event would need 1e14 events): clamp rather than
  // wrap a sum into a figure of the opposite sign.
  constexpr Nanos kMax = static_cast<Nanos>(~static_cast<unsigned __int128>(0) >> 1);
  return b > 0 ? kMax : -kMax - 1;
}

double NanosToDouble(Nanos n) {
  const Nanos whole = n / kNanosPerUnit;
  const Nanos rem = n % kNanosPerUnit;
  return static_cast<double>(whole) + static_cast<double>(rem) / 1e9;
}

nlohmann::json NumberJson(double v) {
  if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < 9.0e15) {
    return static_cast<int64_t>(v);
  }
  return v;
}

void Aggregate::AddEvent(Aggregation kind, double number, std::string_view text, int64_t event_ts,
                         std::string_view event_id) {
  ++events;
  switch (kind) {
    case Aggregation::kCount:
      break;
    case Aggregation::kSum:
      sum = SaturatingAdd(sum, ToNanos(number));
      break;
    case Aggregation::kMax:
      if (!max || number > *max) max = number;
      break;
    case Aggregation::kLatest:
      if (!latest || event_ts > latest_ts ||
          (event_ts == latest_ts && event_id > latest_event_id)) {
        latest = number;
        latest_ts = event_ts;
        latest_event_id = std::string(event_id);
      }
      break;
    case Aggregation::kUniqueCount:
      hll.Add(text);
      break;
  }
}

void Aggregate::Merge(Aggregation kind, const Aggregate& o) {
  if (o.events == 0) return;
  events += o.events;
  switch (kind) {
    case Aggregation::kCount:
      break;
    case Aggregation::kSum:
      sum = SaturatingAdd(sum, o.sum);
      break;
    case Aggregation::kMax:
      if (o.max && (!max || *o.max > *max)) max = o.max;
      break;
    case Aggregation::kLatest:
      if (o.latest && (!latest || o.latest_ts > latest_ts ||
                       (o.latest_ts == latest_ts && o.latest_event_id > latest_event_id))) {
        latest = o.latest;
        latest_ts = o.latest_ts;
        latest_event_id = o.latest_event_id;
      }
      break;
    case Aggregation::kUniqueCount:
      hll.Merge(o.hll);
      break;
  }
}

double Aggregate::Value(Aggregation kind) const {
  switch (kind) {
    case Aggregation::kCount:
      return static_cast<double>(events);
    case Aggregation::kSum:
      return NanosToDouble(sum);
    case Aggregation::kMax:
      return max.value_or(0.0);
    case Aggregation::kLatest:
      return latest.value_or(0.0);
    case Aggregation::kUniqueCount:
      return static_cast<double>(hll.EstimateRounded());
  }
  return 0;
}

// Encoding: events as 8 big-endian bytes, then the aggregation's field(s):
//   sum: 16 bytes (two's complement, big-endian); max: 8-byte IEEE double;
//   latest: double, 8-byte event time, eventId (rest); unique_count: HyperLogLog::Serialize.
namespace {

using state::AppendUint64;
uint64_t Get64(std::string_view b, size_t pos) { return state::ReadUint64(b.substr(pos)); }
void PutDouble(std::string& out, double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  AppendUint64(out, u);
}
double GetDouble(std::string_view b, size_t pos) {
  uint64_t u = Get64(b, pos);
  double d;
  std::memcpy(&d, &u, 8);
  return d;
}

}  // namespace

std::string Aggregate::Encode(Aggregation kind) const {
  std::string out;
  AppendUint64(out, events);
  switch (kind) {
    case Aggregation::kCount:
      break;
    case Aggregation::kSum: {
      const auto u = static_cast<unsigned __int128>(sum);
      AppendUint64(out, static_cast<uint64_t>(u >> 64));
      AppendUint64(out, static_cast<uint64_t>(u));
      break;
    }
    case Aggregation::kMax:
      PutDouble(out, max.value_or(0.0));
      break;
    case Aggregation::kLatest:
      PutDouble(out, latest.value_or(0.0));
      AppendUint64(out, static_cast<uint64_t>(latest_ts));
      out += latest_event_id;
      break;
    case Aggregation::kUniqueCount:
      out += hll.Serialize();
      break;
  }
  return out;
}

std::optional<Aggregate> Aggregate::Decode(Aggregation kind, std::string_view b) {
  if (b.size() < 8) return std::nullopt;
  Aggregate a;
  a.events = Get64(b, 0);
  switch (kind) {
    case Aggregation::kCount:
      if (b.size() != 8) return std::nullopt;
      break;
    case Aggregation::kSum: {
      if (b.size() != 24) return std::nullopt;
      const unsigned __int128 u =
          (static_cast<unsigned __int128>(Get64(b, 8)) << 64) | Get64(b, 16);
      a.sum = static_cast<Nanos>(u);
      break;
    }
    case Aggregation::kMax:
      if (b.size() != 16) return std::nullopt;
      if (a.events > 0) a.max = GetDouble(b, 8);
      break;
    case Aggregation::kLatest:
      if (b.size() < 24) return std::nullopt;
      if (a.events > 0) a.latest = GetDouble(b, 8);
      a.latest_ts = static_cast<int64_t>(Get64(b, 16));
      a.latest_event_id = std::string(b.substr(24));
      break;
    case Aggregation::kUniqueCount: {
      auto h = HyperLogLog::Deserialize(b.substr(8));
      if (!h) return std::nullopt;
      a.hll = std::move(*h);
      break;
    }
  }
  return a;
}

}  // namespace cm::usage
