#include "processors/usage/aggregate_reader.h"

#include <algorithm>

#include "state/key_codec.h"

namespace cm::usage {

void AggregateReader::Scan(Granularity g, const std::vector<std::string>& dims, int64_t from,
                           int64_t to, const BucketVisitor& visit) {
  if (from >= to) return;
  // Stored series: ungrouped, and grouped by all of the metric's dimensions; a group-by on
  // fewer dimensions merges the full series' entries by the dimensions asked for.
  const bool project = !dims.empty() && dims != metric_.group_by;
  const std::string dimset = dims.empty() ? "" : keys::Dimset(metric_.group_by);
  std::vector<size_t> picks;  // positions of dims within the stored dimset when projecting
  if (project) {
    for (const auto& d : dims) {
      picks.push_back(
          static_cast<size_t>(std::find(metric_.group_by.begin(), metric_.group_by.end(), d) -
                              metric_.group_by.begin()));
    }
  }
  const std::string prefix = keys::AggregateSeriesPrefix(org_, metric_.metric_type, g, dimset);
  std::string begin = prefix;
  state::AppendOrderedInt64(begin, from);
  std::string end = prefix;
  state::AppendOrderedInt64(end, to);
  std::map<std::pair<int64_t, DimValues>, Aggregate> projected;
  store_.Range(begin, end, [&](std::string_view key, std::string_view value) {
    auto parts = keys::ParseAggregateKey(key);
    auto agg = Aggregate::Decode(metric_.aggregation, value);
    if (!parts || !agg) {
      ++decode_errors_;
      return true;
    }
    if (!project) {
      visit(parts->bucket_start, parts->values, *agg);
      return true;
    }
    DimValues v;
    for (size_t p : picks) v.push_back(p < parts->values.size() ? parts->values[p] : std::nullopt);
    projected[{parts->bucket_start, std::move(v)}].Merge(metric_.aggregation, *agg);
    return true;
  });
  for (const auto& [k, agg] : projected) visit(k.first, k.second, agg);
}

state::Status AggregateReader::Tile(int level, int64_t from, int64_t to,
                                    const std::vector<std::string>& dims, GroupedAggregates& out) {
  if (from >= to) return state::Status::OK();
  const Granularity g = kGranularities[static_cast<size_t>(level)];
  int64_t a = from;
  int64_t b = to;
  if (level > 0) {
    a = BucketCeil(g, from);
    b = BucketStart(g, to);
  } else if (!IsAligned(g, from) || !IsAligned(g, to)) {
    return state::Status::InvalidArgument("range bounds must be whole minutes");
  }
  if (a >= b) return level == 0 ? state::Status::OK() : Tile(level - 1, from, to, dims, out);
  const int64_t rolled = settings_.RolledUpBefore(metric_.metric_type, g);
  if (BucketEnd(g, a) <= rolled) {
    return state::Status::InvalidArgument(
        "metric " + metric_.metric_type + ": " + GranularityName(g) + " buckets before " +
        FormatTimestamp(rolled) + " were rolled up, so the range from " + FormatTimestamp(a) +
        " cannot be answered at that resolution; align it to a coarser granularity");
  }
  Scan(g, dims, a, b, [&](int64_t, const DimValues& values, const Aggregate& agg) {
    out[values].Merge(metric_.aggregation, agg);
  });
  if (level == 0) return state::Status::OK();
  if (auto s = Tile(level - 1, from, a, dims, out); !s.ok()) return s;
  return Tile(level - 1, b, to, dims, out);
}

state::Result<GroupedAggregates> AggregateReader::Total(const std::vector<std::string>& dims,
                                                        int64_t from, int64_t to) {
  GroupedAggregates out;
  if (auto s = Tile(3, from, to, dims, out); !s.ok()) return s;
  return out;
}

}  // namespace cm::usage
