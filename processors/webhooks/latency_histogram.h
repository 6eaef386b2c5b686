#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace cm::webhooks {

// Attempt outcomes of one endpoint over one hour, kept in state for getHealthMetrics. Latencies
// go into log-spaced buckets (each 10% wider than the one below, from 1 ms), so a percentile is
// read to within 10% of the true latency whatever the spread, in a few hundred bytes per hour.
class LatencyHistogram {
 public:
  static LatencyHistogram FromJson(const nlohmann::json& j);
  nlohmann::json ToJson() const;

  // `error_class` empty for a success.
  void Add(int64_t latency_ms, bool success, const std::string& error_class);
  void Merge(const LatencyHistogram& other);

  int64_t count() const { return count_; }
  int64_t successes() const { return successes_; }
  double Average() const;
  // The upper bound of the bucket holding quantile q (0..1), at most the largest latency seen;
  // 0 when empty.
  double Quantile(double q) const;
  const std::map<std::string, int64_t>& errors() const { return errors_; }

  static int Bucket(int64_t latency_ms);
  static double UpperBound(int bucket);

 private:
  int64_t count_ = 0;
  int64_t successes_ = 0;
  int64_t sum_ms_ = 0;
  int64_t max_ms_ = 0;
  std::map<int, int64_t> buckets_;
  std::map<std::string, int64_t> errors_;
};

}  // namespace cm::webhooks
