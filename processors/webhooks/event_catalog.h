#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cm::webhooks {

// The event types an endpoint may subscribe to (README "Webhooks", "Event catalog"): the
// usage events, the team events, the quota alerts and webhook.test. A subscription entry is
// `*` (everything), an exact type, or `<family>.*` for every type of a known family.
const std::vector<std::string>& EventCatalog();

// nullopt when `events` is a non-empty array of at most 100 valid entries without duplicates,
// else a message naming the first bad entry.
std::optional<std::string> CheckSubscriptions(const nlohmann::json& events);

// Whether an endpoint subscribed to `subscriptions` receives an event of `event_type`. Types
// outside the catalog (a usage event type of the organization's own) match `*` and their
// family's `<family>.*`.
bool Matches(const nlohmann::json& subscriptions, std::string_view event_type);

}  // namespace cm::webhooks
