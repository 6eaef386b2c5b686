#include "topology/common/prometheus_text.h"

namespace cm::topology {

namespace {

// Label values escape backslash, double quote and newline (the exposition format's rule).
void WriteLabelValue(std::ostream& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out << '\\' << c;
    } else if (c == '\n') {
      out << "\\n";
    } else {
      out << c;
    }
  }
}

}  // namespace

PrometheusText& PrometheusText::Family(std::string_view name, std::string_view type,
                                       std::string_view help) {
  out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  return *this;
}

PrometheusText& PrometheusText::Histogram(std::string_view name, const MetricLabels& labels,
                                          std::span<const double> bounds,
                                          std::span<const uint64_t> cumulative, uint64_t count,
                                          double sum) {
  const std::string bucket = std::string(name) + "_bucket";
  for (size_t i = 0; i < bounds.size() && i < cumulative.size(); ++i) {
    std::ostringstream le;
    le << bounds[i];
    WriteSeries(bucket, labels, le.str());
    out_ << cumulative[i] << '\n';
  }
  WriteSeries(bucket, labels, "+Inf");
  out_ << count << '\n';
  WriteSeries(std::string(name) + "_sum", labels);
  out_ << sum << '\n';
  WriteSeries(std::string(name) + "_count", labels);
  out_ << count << '\n';
  return *this;
}

void PrometheusText::WriteSeries(std::string_view name, const MetricLabels& labels,
                                 std::string_view le) {
  out_ << name;
  if (!labels.empty() || !le.empty()) {
    out_ << '{';
    bool first = true;
    for (const auto& [label, value] : labels) {
      out_ << (first ? "" : ",") << label << "=\"";
      WriteLabelValue(out_, value);
      out_ << '"';
      first = false;
    }
    if (!le.empty()) out_ << (first ? "" : ",") << "le=\"" << le << '"';
    out_ << '}';
  }
  out_ << ' ';
}

}  // namespace cm::topology
