// The usage application's store (and changelog) value and key decoders, which restores and
// snapshots run over whatever the changelog holds. The first byte picks the decoder, the rest
// is the stored bytes:
//   0..4  Aggregate::Decode for count, sum, unique_count, max, latest (usage-aggregates and
//         usage-totals values), then Value and Merge as queries and rollups use them
//   5     HyperLogLog::Deserialize
//   6     OrgSettings (usage-orgs values, JSON) as OrgSettings::Load reads them
//   7     keys::ParseAggregateKey and keys::KeyOrg (usage-aggregates keys)
// Invariants: a malformed value is refused with nullopt (or read as defaults), never a throw or
// a sanitizer report; whatever is accepted re-encodes to bytes that decode to the same state.
#include <cmath>

#include "fuzz_check.h"
#include "processors/usage/aggregate.h"
#include "processors/usage/hyper_log_log.h"
#include "processors/usage/metric_catalog.h"
#include "processors/usage/org_settings.h"
#include "processors/usage/usage_stores.h"

namespace {

using namespace cm::usage;

constexpr Aggregation kKinds[] = {Aggregation::kCount, Aggregation::kSum, Aggregation::kUniqueCount,
                                  Aggregation::kMax, Aggregation::kLatest};

void AggregateValue(Aggregation kind, std::string_view bytes) {
  auto a = Aggregate::Decode(kind, bytes);
  if (!a) return;
  const std::string encoded = a->Encode(kind);
  auto b = Aggregate::Decode(kind, encoded);
  FUZZ_CHECK(b.has_value(), "an encoded aggregate does not decode");
  FUZZ_CHECK(b->Encode(kind) == encoded, "decode/encode is not stable");
  (void)a->Value(kind);
  Aggregate merged = *a;
  merged.Merge(kind, *b);
  FUZZ_CHECK(Aggregate::Decode(kind, merged.Encode(kind)).has_value(), "a merge does not encode");
}

void HllValue(std::string_view bytes) {
  auto h = HyperLogLog::Deserialize(bytes);
  if (!h) return;
  const std::string s = h->Serialize();
  auto again = HyperLogLog::Deserialize(s);
  FUZZ_CHECK(again.has_value() && again->Serialize() == s, "serialize/deserialize is not stable");
  const double estimate = h->Estimate();
  FUZZ_CHECK(std::isfinite(estimate) && estimate >= 0, std::to_string(estimate));
  HyperLogLog merged = *h;
  merged.Merge(*again);
  FUZZ_CHECK(HyperLogLog::Deserialize(merged.Serialize()).has_value(), "a merge does not encode");
}

void OrgSettingsValue(std::string_view bytes) {
  const OrgSettings s = OrgSettings::FromJson(nlohmann::json::parse(bytes, nullptr, false));
  const nlohmann::json j = s.ToJson();
  FUZZ_CHECK(OrgSettings::FromJson(j).ToJson() == j, "ToJson/FromJson is not stable: " + j.dump());
  const Catalog& catalog = DefaultCatalog();
  FUZZ_CHECK(catalog.FindPlan(s.PlanAt(kMaxTimeMs - 1, catalog)) != nullptr, "no plan in force");
  // The periods of every time an event can carry are well formed.
  for (int64_t t : {kMinTimeMs, int64_t{1'714'564'800'000}, kMaxTimeMs - 1}) {
    const Period p = s.PeriodAt(t);
    FUZZ_CHECK(p.start <= t && t < p.end, "a period that does not contain its time");
  }
}

void AggregateKeyBytes(std::string_view bytes) {
  auto p = keys::ParseAggregateKey(bytes);
  if (p) {
    const std::string k = keys::AggregateKey(p->org, p->metric, p->granularity, p->dimset,
                                             p->bucket_start, p->values);
    auto again = keys::ParseAggregateKey(k);
    FUZZ_CHECK(again && again->org == p->org && again->metric == p->metric &&
                   again->granularity == p->granularity && again->dimset == p->dimset &&
                   again->bucket_start == p->bucket_start && again->values == p->values,
               "aggregate key parse/encode is not stable");
    FUZZ_CHECK(keys::KeyOrg(bytes) == p->org, "KeyOrg disagrees with ParseAggregateKey");
  }
  (void)keys::KeyOrg(bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes = cm::fuzz::Bytes(data + 1, size - 1);
  const uint8_t which = data[0] % 8;
  if (which < 5) {
    AggregateValue(kKinds[which], bytes);
  } else if (which == 5) {
    HllValue(bytes);
  } else if (which == 6) {
    OrgSettingsValue(bytes);
  } else {
    AggregateKeyBytes(bytes);
  }
  return 0;
}
