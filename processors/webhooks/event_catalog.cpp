#include "processors/webhooks/event_catalog.h"

#include <algorithm>
#include <set>

namespace cm::webhooks {

namespace {

std::string_view Family(std::string_view type) {
  const size_t dot = type.find('.');
  return dot == std::string_view::npos ? type : type.substr(0, dot);
}

bool KnownFamily(std::string_view family) {
  const auto& catalog = EventCatalog();
  return std::any_of(catalog.begin(), catalog.end(),
                     [&](const std::string& t) { return Family(t) == family; });
}

}  // namespace

const std::vector<std::string>& EventCatalog() {
  static const std::vector<std::string> kCatalog = {
      // usage events (cloudmatrix.events)
      "api.call", "billing.subscription_changed", "compute.used", "document.created",
      "document.deleted", "document.shared", "document.updated", "presence.joined", "presence.left",
      "storage.delete", "storage.upload",
      // team events (cloudmatrix.team-events)
      "invitation.accepted", "invitation.expired", "invitation.revoked", "invitation.sent",
      "member.added", "member.removed", "member.role_changed", "team.created", "team.deleted",
      "team.moved", "team.updated",
      // quota alerts (cloudmatrix.quota-alerts)
      "quota.threshold_crossed",
      // sendTestEvent
      "webhook.test"};
  return kCatalog;
}

std::optional<std::string> CheckSubscriptions(const nlohmann::json& events) {
  if (!events.is_array() || events.empty())
    return "events must be a non-empty array of event types ('*' for all)";
  if (events.size() > 100) return "events may list at most 100 entries";
  std::set<std::string> seen;
  const auto& catalog = EventCatalog();
  for (const auto& e : events) {
    if (!e.is_string()) return "events must contain strings only";
    const std::string s = e.get<std::string>();
    if (!seen.insert(s).second) return "events lists '" + s + "' twice";
    if (s == "*") continue;
    if (s.size() > 2 && s.ends_with(".*") && KnownFamily(s.substr(0, s.size() - 2))) continue;
    if (std::find(catalog.begin(), catalog.end(), s) != catalog.end()) continue;
    return "unknown event type '" + s.substr(0, 128) +
           "' (see the event catalog; '*' for all, '<family>.*' for a family)";
  }
  return std::nullopt;
}

bool Matches(const nlohmann::json& subscriptions, std::string_view event_type) {
  if (!subscriptions.is_array()) return false;
  for (const auto& e : subscriptions) {
    if (!e.is_string()) continue;
    const auto& s = e.get_ref<const std::string&>();
    if (s == "*" || s == event_type) return true;
    if (s.ends_with(".*") && Family(event_type) == std::string_view(s).substr(0, s.size() - 2) &&
        event_type.find('.') != std::string_view::npos)
      return true;
  }
  return false;
}

}  // namespace cm::webhooks
