// HyperLogLog: error bounds against exact counts, merge, serialization.
#include <cmath>

#include "processors/usage/hyper_log_log.h"
#include "usage_test_support.h"

namespace cm::usage::testing {
namespace {

double RelativeError(const HyperLogLog& h, double exact) { return (h.Estimate() - exact) / exact; }

TEST(UsageHyperLogLog, ErrorBoundsAgainstExactCounts) {
  // Precision 14: standard error 1.04 / sqrt(16384) = 0.8125%.
  HyperLogLog ten;
  for (int i = 0; i < 10; ++i) ten.Add("user-" + std::to_string(i));
  EXPECT_EQ(ten.EstimateRounded(), 10u) << "linear counting is exact for tiny sets";
  for (int i = 0; i < 10; ++i) ten.Add("user-" + std::to_string(i));  // repeats change nothing
  EXPECT_EQ(ten.EstimateRounded(), 10u);

  HyperLogLog thousand;
  for (int i = 0; i < 1000; ++i) thousand.Add("user-" + std::to_string(i));
  EXPECT_LT(std::fabs(RelativeError(thousand, 1000)), 0.01) << thousand.Estimate();

  // Over many independent sets of 100,000 distinct values, the root-mean-square error stays
  // near the standard error and no estimate leaves +-3 standard errors (2.44%).
  double sum_sq = 0;
  constexpr int kTrials = 12;
  for (int trial = 0; trial < kTrials; ++trial) {
    HyperLogLog h;
    for (int i = 0; i < 100'000; ++i) h.Add("t" + std::to_string(trial) + "-v" + std::to_string(i));
    const double err = RelativeError(h, 100'000);
    EXPECT_LT(std::fabs(err), 0.0244) << "trial " << trial;
    sum_sq += err * err;
  }
  EXPECT_LT(std::sqrt(sum_sq / kTrials), 0.0125);
}

TEST(UsageHyperLogLog, MergeIsTheUnionAndSerializationIsCompact) {
  HyperLogLog a, b, both;
  for (int i = 0; i < 3000; ++i) a.Add("v" + std::to_string(i));
  for (int i = 2000; i < 6000; ++i) b.Add("v" + std::to_string(i));
  for (int i = 0; i < 6000; ++i) both.Add("v" + std::to_string(i));
  HyperLogLog ab = a, ba = b;
  ab.Merge(b);
  ba.Merge(a);
  EXPECT_EQ(ab.Serialize(), both.Serialize()) << "register-wise max: merge equals adding the union";
  EXPECT_EQ(ba.Serialize(), both.Serialize()) << "merge is commutative";
  EXPECT_LT(std::fabs(RelativeError(ab, 6000)), 0.02);

  HyperLogLog small;
  for (int i = 0; i < 10; ++i) small.Add("x" + std::to_string(i));
  EXPECT_TRUE(small.sparse());
  EXPECT_EQ(small.Serialize().size(), 5u + 10 * 4) << "sparse: 4 bytes per register set";
  auto back = HyperLogLog::Deserialize(small.Serialize());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->Serialize(), small.Serialize());
  EXPECT_FALSE(both.sparse());
  EXPECT_EQ(both.Serialize().size(), 1u + HyperLogLog::kRegisters);
  auto dense = HyperLogLog::Deserialize(both.Serialize());
  ASSERT_TRUE(dense.has_value());
  EXPECT_EQ(dense->Estimate(), both.Estimate());
  EXPECT_FALSE(HyperLogLog::Deserialize(std::string("S\0\0\0\x02", 5)).has_value());
  EXPECT_FALSE(HyperLogLog::Deserialize("Dshort").has_value());
  EXPECT_EQ(HyperLogLog().EstimateRounded(), 0u);
}

}  // namespace
}  // namespace cm::usage::testing
