#pragma once

// The Prometheus text exposition format (version 0.0.4), written one metric family at a time.
// Every part's /metrics text goes through here, so label values are escaped and families are
// shaped alike wherever they come from.
#include <cstdint>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cm::topology {

using MetricLabels = std::vector<std::pair<std::string_view, std::string>>;

class PrometheusText {
 public:
  // Starts a family: its # HELP and # TYPE lines. `type` is counter, gauge or histogram.
  PrometheusText& Family(std::string_view name, std::string_view type, std::string_view help);

  // One sample `name{labels} value`.
  template <typename Number>
  PrometheusText& Sample(std::string_view name, const MetricLabels& labels, Number value) {
    WriteSeries(name, labels);
    out_ << value << '\n';
    return *this;
  }
  template <typename Number>
  PrometheusText& Sample(std::string_view name, Number value) {
    return Sample(name, {}, value);
  }

  // A histogram's series: `cumulative[i]` observations at or below `bounds[i]`, `count` in all
  // (the +Inf bucket), and their sum.
  PrometheusText& Histogram(std::string_view name, const MetricLabels& labels,
                            std::span<const double> bounds, std::span<const uint64_t> cumulative,
                            uint64_t count, double sum);

  std::string str() const { return out_.str(); }

 private:
  void WriteSeries(std::string_view name, const MetricLabels& labels, std::string_view le = {});

  std::ostringstream out_;
};

}  // namespace cm::topology
