#include "processors/webhooks/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace cm::webhooks {

using nlohmann::json;

namespace {
constexpr double kGrowth = 1.1;
}

int LatencyHistogram::Bucket(int64_t latency_ms) {
  if (latency_ms <= 1) return 0;
  return static_cast<int>(std::ceil(std::log(static_cast<double>(latency_ms)) / std::log(kGrowth)));
}

double LatencyHistogram::UpperBound(int bucket) { return std::pow(kGrowth, bucket); }

LatencyHistogram LatencyHistogram::FromJson(const json& j) {
  LatencyHistogram h;
  if (!j.is_object()) return h;
  h.count_ = j.value("count", int64_t{0});
  h.successes_ = j.value("successes", int64_t{0});
  h.sum_ms_ = j.value("sumMs", int64_t{0});
  h.max_ms_ = j.value("maxMs", int64_t{0});
  if (auto b = j.find("buckets"); b != j.end() && b->is_object()) {
    for (const auto& [k, v] : b->items()) {
      if (v.is_number_integer()) h.buckets_[std::atoi(k.c_str())] = v.get<int64_t>();
    }
  }
  if (auto e = j.find("errors"); e != j.end() && e->is_object()) {
    for (const auto& [k, v] : e->items()) {
      if (v.is_number_integer()) h.errors_[k] = v.get<int64_t>();
    }
  }
  return h;
}

json LatencyHistogram::ToJson() const {
  json buckets = json::object();
  for (const auto& [b, n] : buckets_) buckets[std::to_string(b)] = n;
  return {{"count", count_},  {"successes", successes_}, {"sumMs", sum_ms_},
          {"maxMs", max_ms_}, {"buckets", buckets},      {"errors", errors_}};
}

void LatencyHistogram::Add(int64_t latency_ms, bool success, const std::string& error_class) {
  latency_ms = std::max<int64_t>(latency_ms, 0);
  ++count_;
  if (success) ++successes_;
  sum_ms_ += latency_ms;
  max_ms_ = std::max(max_ms_, latency_ms);
  ++buckets_[Bucket(latency_ms)];
  if (!success) ++errors_[error_class.empty() ? "unknown" : error_class];
}

void LatencyHistogram::Merge(const LatencyHistogram& o) {
  count_ += o.count_;
  successes_ += o.successes_;
  sum_ms_ += o.sum_ms_;
  max_ms_ = std::max(max_ms_, o.max_ms_);
  for (const auto& [b, n] : o.buckets_) buckets_[b] += n;
  for (const auto& [e, n] : o.errors_) errors_[e] += n;
}

double LatencyHistogram::Average() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_ms_) / static_cast<double>(count_);
}

double LatencyHistogram::Quantile(double q) const {
  if (count_ == 0) return 0.0;
  const auto rank = static_cast<int64_t>(std::ceil(q * static_cast<double>(count_)));
  int64_t seen = 0;
  for (const auto& [b, n] : buckets_) {
    seen += n;
    if (seen >= std::max<int64_t>(rank, 1))
      return std::min(UpperBound(b), static_cast<double>(max_ms_));
  }
  return static_cast<double>(max_ms_);
}

}  // namespace cm::webhooks
