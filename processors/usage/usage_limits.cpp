#include "processors/usage/usage_limits.h"

#include <string>

namespace cm::usage {

state::Status UsageLimits::Validate() const {
  if (max_event_bytes == 0 || max_batch_events == 0 || max_id_bytes == 0 ||
      max_query_buckets <= 0 || max_report_range_ms <= 0) {
    return state::Status::InvalidArgument(
        "limits: event bytes, batch events, id bytes, query buckets and report range must be "
        "positive");
  }
  if (max_json_depth < 3 || max_json_depth > topology::kMaxJsonDepth) {
    return state::Status::InvalidArgument(
        "limits: JSON depth must be 3 (the depth of {\"events\":[{...}]}) to " +
        std::to_string(topology::kMaxJsonDepth));
  }
  return state::Status::OK();
}

}  // namespace cm::usage
