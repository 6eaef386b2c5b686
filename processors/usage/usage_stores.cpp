#include "processors/usage/usage_stores.h"

#include <cmath>

#include "state/key_codec.h"

namespace cm::usage {

std::vector<state::StoreSpec> UsageStoreSpecs() {
  return state::StoreSpec::Logged(state::StoreType::kKeyValue,
                                  {kAggregatesStore, kTotalsStore, kOrgsStore, kAlertsStore,
                                   kDedupStore, kCommandResultsStore});
}

namespace keys {

std::string Dimset(const std::vector<std::string>& sorted_dims) {
  std::string out;
  for (size_t i = 0; i < sorted_dims.size(); ++i) {
    if (i) out.push_back(',');
    out += sorted_dims[i];
  }
  return out;
}

std::vector<std::string> SplitDimset(std::string_view dimset) {
  std::vector<std::string> out;
  while (!dimset.empty()) {
    size_t comma = dimset.find(',');
    out.emplace_back(dimset.substr(0, comma));
    if (comma == std::string_view::npos) break;
    dimset.remove_prefix(comma + 1);
  }
  return out;
}

std::string AggregateOrgPrefix(std::string_view org) {
  std::string k;
  state::AppendLengthPrefixed(k, org);
  return k;
}

std::string AggregateGranularityPrefix(std::string_view org, std::string_view metric,
                                       Granularity g) {
  std::string k;
  state::AppendLengthPrefixed(k, org);
  state::AppendLengthPrefixed(k, metric);
  k.push_back(static_cast<char>(g));
  return k;
}

std::string AggregateSeriesPrefix(std::string_view org, std::string_view metric, Granularity g,
                                  std::string_view dimset) {
  std::string k = AggregateGranularityPrefix(org, metric, g);
  state::AppendLengthPrefixed(k, dimset);
  return k;
}

std::string AggregateKey(std::string_view org, std::string_view metric, Granularity g,
                         std::string_view dimset, int64_t bucket_start, const DimValues& values) {
  std::string k = AggregateSeriesPrefix(org, metric, g, dimset);
  state::AppendOrderedInt64(k, bucket_start);
  for (const auto& v : values) {
    if (!v) {
      k.push_back('\x00');
    } else {
      k.push_back('\x01');
      state::AppendLengthPrefixed(k, *v);
    }
  }
  return k;
}

std::optional<AggregateKeyParts> ParseAggregateKey(std::string_view key) {
  AggregateKeyParts p;
  size_t pos = 0;
  if (!state::ReadLengthPrefixed(key, pos, p.org) ||
      !state::ReadLengthPrefixed(key, pos, p.metric) || pos >= key.size()) {
    return std::nullopt;
  }
  uint8_t g = static_cast<uint8_t>(key[pos++]);
  if (g > 3) return std::nullopt;
  p.granularity = static_cast<Granularity>(g);
  if (!state::ReadLengthPrefixed(key, pos, p.dimset) || pos + 8 > key.size()) return std::nullopt;
  p.bucket_start = state::ReadOrderedInt64(key.substr(pos));
  pos += 8;
  size_t n = p.dimset.empty() ? 0 : SplitDimset(p.dimset).size();
  for (size_t i = 0; i < n; ++i) {
    if (pos >= key.size()) return std::nullopt;
    char tag = key[pos++];
    if (tag == '\x00') {
      p.values.emplace_back(std::nullopt);
    } else {
      std::string v;
      if (!state::ReadLengthPrefixed(key, pos, v)) return std::nullopt;
      p.values.emplace_back(std::move(v));
    }
  }
  if (pos != key.size()) return std::nullopt;
  return p;
}

std::optional<std::string> KeyOrg(std::string_view key) {
  size_t pos = 0;
  std::string org;
  if (!state::ReadLengthPrefixed(key, pos, org)) return std::nullopt;
  return org;
}

std::string TotalsOrgPrefix(std::string_view org) {
  std::string k;
  state::AppendLengthPrefixed(k, org);
  return k;
}

std::string TotalsPeriodPrefix(std::string_view org, std::string_view metric) {
  std::string k = TotalsOrgPrefix(org);
  state::AppendLengthPrefixed(k, metric);
  k.push_back('P');
  return k;
}

std::string TotalPeriodKey(std::string_view org, std::string_view metric, int64_t period_start) {
  std::string k = TotalsPeriodPrefix(org, metric);
  state::AppendOrderedInt64(k, period_start);
  return k;
}

std::string TotalLifetimeKey(std::string_view org, std::string_view metric) {
  std::string k = TotalsOrgPrefix(org);
  state::AppendLengthPrefixed(k, metric);
  k.push_back('L');
  return k;
}

std::string AlertSubscriptionPrefix(std::string_view org) {
  std::string k;
  state::AppendLengthPrefixed(k, org);
  k.push_back('s');
  return k;
}

std::string AlertSubscriptionMetricPrefix(std::string_view org, std::string_view metric) {
  std::string k = AlertSubscriptionPrefix(org);
  state::AppendLengthPrefixed(k, metric);
  return k;
}

std::string AlertSubscriptionKey(std::string_view org, std::string_view metric,
                                 std::string_view subscription_id) {
  std::string k = AlertSubscriptionMetricPrefix(org, metric);
  k.append(subscription_id);
  return k;
}

std::string AlertMetricsKey(std::string_view org) {
  std::string k;
  state::AppendLengthPrefixed(k, org);
  k.push_back('m');
  return k;
}

std::string AlertFiredKey(std::string_view org, std::string_view subscription_id, double threshold,
                          int64_t period_start) {
  std::string k;
  state::AppendLengthPrefixed(k, org);
  k.push_back('f');
  state::AppendLengthPrefixed(k, subscription_id);
  state::AppendOrderedInt64(k, std::llround(threshold * 1000));
  state::AppendOrderedInt64(k, period_start);
  return k;
}

std::string DedupKey(std::string_view org, std::string_view event_id) {
  std::string k(1, 'e');
  state::AppendLengthPrefixed(k, org);
  k.append(event_id);
  return k;
}

std::string DedupExpiryKey(int64_t event_time, std::string_view org, std::string_view event_id) {
  std::string k(1, kDedupExpiryTag);
  state::AppendOrderedInt64(k, event_time);
  state::AppendLengthPrefixed(k, org);
  k.append(event_id);
  return k;
}

}  // namespace keys

namespace {

std::string PercentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (c == '%' || c == '&' || c == '=') {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

}  // namespace

std::string DimensionKey(const std::vector<std::string>& dims, const DimValues& values) {
  std::string out;
  for (size_t i = 0; i < dims.size() && i < values.size(); ++i) {
    if (i) out.push_back('&');
    out += dims[i];
    if (values[i]) {
      out.push_back('=');
      out += PercentEncode(*values[i]);
    }
  }
  return out;
}

nlohmann::json DimensionsJson(const std::vector<std::string>& dims, const DimValues& values) {
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < dims.size() && i < values.size(); ++i) {
    j[dims[i]] = values[i] ? nlohmann::json(*values[i]) : nlohmann::json(nullptr);
  }
  return j;
}

}  // namespace cm::usage
