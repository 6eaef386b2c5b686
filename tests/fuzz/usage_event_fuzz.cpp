// The usage event parser: POST /v1/usage/events bodies (one event in the seeds' shape or as a
// CloudEvents 1.0 envelope, or {"events": [...]}) through ParseUsageEventBatch with the
// default catalog. Invariants: a refusal is an InvalidArgument value that renders as the
// route's JSON 400; an accepted event fits the documented bounds, and what the route appends
// (ToJson) parses back to the very same event (the processor re-reads it from Kafka).
#include <cmath>

#include "fuzz_check.h"
#include "processors/usage/metric_catalog.h"
#include "processors/usage/usage_event.h"
#include "topology/query/http_server.h"

namespace {

constexpr int64_t kNow = 1'714'564'800'000;  // 2024-05-01T12:00:00Z

bool Same(const cm::usage::UsageEvent& a, const cm::usage::UsageEvent& b) {
  return a.event_id == b.event_id && a.organization_id == b.organization_id &&
         a.user_id == b.user_id && a.event_type == b.event_type && a.resource_id == b.resource_id &&
         a.resource_type == b.resource_type && a.quantity == b.quantity &&
         a.metadata == b.metadata && a.timestamp_ms == b.timestamp_ms;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cm::usage;
  const Catalog& catalog = DefaultCatalog();
  const UsageLimits limits;  // the defaults of `cmstream run`
  auto events = ParseUsageEventBatch(cm::fuzz::Bytes(data, size), kNow, &catalog, {}, limits);
  if (!events.ok()) {
    FUZZ_CHECK(events.status().code() == cm::state::Status::Code::kInvalidArgument,
               events.status().ToString());
    // What POST /v1/usage/events answers: the reason in a JSON 400.
    auto r = cm::topology::HttpResponse::Error(400, "validation_error", events.status().message(),
                                               {{"reason", events.status().message()}});
    FUZZ_CHECK(r.status == 400 && !r.body.empty(), r.body);
    return 0;
  }
  FUZZ_CHECK(!events->events.empty() && events->events.size() <= limits.max_batch_events,
             "batch size out of bounds");
  for (const UsageEvent& e : events->events) {
    FUZZ_CHECK(CheckOrganizationId(e.organization_id, limits).ok(), e.organization_id);
    FUZZ_CHECK(!e.event_id.empty() && e.event_id.size() <= limits.max_id_bytes, e.event_id);
    FUZZ_CHECK(!e.quantity ||
                   (std::isfinite(*e.quantity) && *e.quantity >= 0 && *e.quantity <= kMaxQuantity),
               "quantity out of bounds");
    FUZZ_CHECK(e.metadata.is_object(), "metadata is not an object");
    const std::string appended = e.ToJson().dump();
    auto again = ParseUsageEvent(std::string_view(appended), kNow, &catalog, {}, limits);
    FUZZ_CHECK(again.ok(), "the appended event is refused: " + again.status().ToString());
    FUZZ_CHECK(Same(e, *again), "the appended event reads back differently: " + appended);
    for (const auto& m : catalog.metrics) {
      (void)m.Matches(e);
      (void)e.TextProperty(m.value_property);
      (void)e.NumberProperty(m.value_property);
    }
  }
  return 0;
}
