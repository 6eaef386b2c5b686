// topology::PrometheusText: the one writer of every part's /metrics text.
#include <gtest/gtest.h>

#include <vector>

#include "topology/common/prometheus_text.h"

namespace cm::topology {
namespace {

TEST(PrometheusTextTest, FamiliesSamplesAndEscapedLabels) {
  PrometheusText out;
  out.Family("cm_things_total", "counter", "Things seen.")
      .Sample("cm_things_total", 3)
      .Sample("cm_things_total", {{"route", "GET /a\"b\\c\nd"}, {"queue", "q"}}, uint64_t{7});
  EXPECT_EQ(out.str(),
            "# HELP cm_things_total Things seen.\n"
            "# TYPE cm_things_total counter\n"
            "cm_things_total 3\n"
            "cm_things_total{route=\"GET /a\\\"b\\\\c\\nd\",queue=\"q\"} 7\n");
}

TEST(PrometheusTextTest, HistogramHasCumulativeBucketsInfSumAndCount) {
  PrometheusText out;
  const double bounds[] = {0.005, 0.1};
  const std::vector<uint64_t> cumulative = {2, 5};
  out.Histogram("cm_latency_seconds", {{"thread", "0"}}, bounds, cumulative, 6, 0.75);
  EXPECT_EQ(out.str(),
            "cm_latency_seconds_bucket{thread=\"0\",le=\"0.005\"} 2\n"
            "cm_latency_seconds_bucket{thread=\"0\",le=\"0.1\"} 5\n"
            "cm_latency_seconds_bucket{thread=\"0\",le=\"+Inf\"} 6\n"
            "cm_latency_seconds_sum{thread=\"0\"} 0.75\n"
            "cm_latency_seconds_count{thread=\"0\"} 6\n");
}

}  // namespace
}  // namespace cm::topology
