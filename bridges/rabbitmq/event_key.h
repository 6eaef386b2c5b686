#pragma once

#include <string>
#include <string_view>

#include "state/status.h"

namespace cm::rabbitmq {

// The Kafka key of an event envelope (DESIGN.md §4): its organizationId, read from a UsageEvent
// or from a CloudEvents envelope (`data.organizationId`, or the `organizationid` extension).
// Only what keying needs is checked here; the usage processor validates the rest and sends
// what it rejects to the DLQ itself. InvalidArgument says why a message cannot be keyed.
state::Result<std::string> ExtractOrganizationId(std::string_view body);

}  // namespace cm::rabbitmq
