#include "processors/usage/usage_event.h"

#include <cmath>

#include "processors/usage/metric_catalog.h"
#include "processors/usage/time_util.h"
#include "topology/common/json.h"

namespace cm::usage {

using nlohmann::json;
using state::Result;
using state::Status;

namespace {

Status Bad(std::string msg) { return Status::InvalidArgument(std::move(msg)); }

// A value quoted in an error message, cut to 64 bytes: an error never echoes a large input
// (a 50 MB string was once echoed twice in a 400).
std::string Excerpt(const json& value) {
  constexpr size_t kMax = 64;
  std::string text = value.dump();
  if (text.size() <= kMax) return text;
  return text.substr(0, kMax) + "... (" + std::to_string(text.size()) + " bytes)";
}

std::string TooLong(std::string_view field, const UsageLimits& limits) {
  return std::string(field) + " is longer than " + std::to_string(limits.max_id_bytes) + " bytes";
}

// A required id: a non-empty string of at most limits.max_id_bytes bytes.
Status RequiredId(const json& j, const char* field, const UsageLimits& limits, std::string& out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return Bad(std::string(field) + " is required");
  if (!it->is_string()) return Bad(std::string(field) + " must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty()) return Bad(std::string(field) + " must not be empty");
  if (s.size() > limits.max_id_bytes) return Bad(TooLong(field, limits));
  out = s;
  return Status::OK();
}

Status OptionalString(const json& j, const char* field, const UsageLimits& limits,
                      std::optional<std::string>& out) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return Status::OK();
  if (!it->is_string()) return Bad(std::string(field) + " must be a string");
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty()) return Bad(std::string(field) + " must not be empty when present");
  if (s.size() > limits.max_id_bytes) return Bad(TooLong(field, limits));
  out = s;
  return Status::OK();
}

}  // namespace

Status CheckOrganizationId(std::string_view id, const UsageLimits& limits, std::string_view field) {
  const std::string name(field);
  if (id.empty()) return Bad(name + " must not be empty");
  if (id.size() > limits.max_id_bytes) return Bad(TooLong(name, limits));
  for (unsigned char c : id) {
    if (c == '/' || c < 0x20 || c == 0x7f) {
      return Bad(name + " must not contain '/' or control characters");
    }
  }
  return Status::OK();
}

namespace {

// Maps a CloudEvents 1.0 structured-mode envelope onto the seeds' UsageEvent shape.
Result<json> FromCloudEvent(const json& ce) {
  const json& sv = ce["specversion"];
  if (!sv.is_string() || sv.get<std::string>() != "1.0") {
    return Bad("CloudEvents specversion must be \"1.0\"");
  }
  if (ce.contains("data_base64"))
    return Bad("CloudEvents data_base64 is not supported; send JSON data");
  if (ce.contains("datacontenttype")) {
    if (!ce["datacontenttype"].is_string())
      return Bad("CloudEvents datacontenttype must be a string");
    const auto& ct = ce["datacontenttype"].get_ref<const std::string&>();
    if (ct.rfind("application/json", 0) != 0 && ct.find("+json") == std::string::npos) {
      return Bad("CloudEvents datacontenttype '" + ct + "' is not JSON");
    }
  }
  for (const char* f : {"id", "type", "source"}) {
    if (!ce.contains(f)) return Bad(std::string("CloudEvents ") + f + " is required");
  }
  if (!ce["source"].is_string() || ce["source"].get_ref<const std::string&>().empty()) {
    return Bad("CloudEvents source must be a non-empty string");
  }
  json data = ce.value("data", json::object());
  if (data.is_null()) data = json::object();
  if (!data.is_object()) return Bad("CloudEvents data must be a JSON object");
  json out = json::object();
  out["eventId"] = ce["id"];
  out["eventType"] = ce["type"];
  if (ce.contains("time")) out["timestamp"] = ce["time"];
  for (const char* f :
       {"organizationId", "userId", "resourceId", "resourceType", "quantity", "metadata"}) {
    if (data.contains(f)) out[f] = data[f];
  }
  if (!out.contains("organizationId") && ce.contains("organizationid"))
    out["organizationId"] = ce["organizationid"];
  if (!out.contains("userId") && ce.contains("userid")) out["userId"] = ce["userid"];
  if (!out.contains("resourceId") && ce.contains("subject")) out["resourceId"] = ce["subject"];
  json metadata = out.value("metadata", json::object());
  if (metadata.is_object() && !metadata.contains("source")) metadata["source"] = ce["source"];
  out["metadata"] = metadata;
  return out;
}

const json* MetadataPath(const json& metadata, std::string_view path) {
  const json* cur = &metadata;
  while (!path.empty()) {
    size_t dot = path.find('.');
    std::string key(path.substr(0, dot));
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  return cur;
}

}  // namespace

json UsageEvent::ToJson() const {
  json j = {{"eventId", event_id},
            {"organizationId", organization_id},
            {"eventType", event_type},
            {"metadata", metadata},
            {"timestamp", FormatTimestamp(timestamp_ms)}};
  if (user_id) j["userId"] = *user_id;
  if (resource_id) j["resourceId"] = *resource_id;
  if (resource_type) j["resourceType"] = *resource_type;
  if (quantity) j["quantity"] = *quantity;
  return j;
}

std::optional<std::string> UsageEvent::TextProperty(std::string_view path) const {
  if (path == "eventId") return event_id;
  if (path == "organizationId") return organization_id;
  if (path == "userId") return user_id;
  if (path == "eventType") return event_type;
  if (path == "resourceId") return resource_id;
  if (path == "resourceType") return resource_type;
  if (path == "quantity") {
    if (!quantity) return std::nullopt;
    return json(*quantity).dump();
  }
  if (path.rfind("metadata.", 0) == 0) {
    const json* v = MetadataPath(metadata, path.substr(9));
    if (v == nullptr || v->is_null() || v->is_object() || v->is_array()) return std::nullopt;
    if (v->is_string()) return v->get<std::string>();
    return v->dump();
  }
  return std::nullopt;
}

std::optional<double> UsageEvent::NumberProperty(std::string_view path) const {
  if (path == "quantity") return quantity;
  if (path.rfind("metadata.", 0) == 0) {
    const json* v = MetadataPath(metadata, path.substr(9));
    if (v == nullptr || !v->is_number()) return std::nullopt;
    double d = v->get<double>();
    if (!std::isfinite(d) || std::fabs(d) > kMaxQuantity) return std::nullopt;
    return d;
  }
  return std::nullopt;
}

Result<UsageEvent> ParseUsageEvent(const json& input, int64_t now_ms, const Catalog* catalog,
                                   const EventTimeBounds& bounds, const UsageLimits& limits) {
  if (!input.is_object()) return Bad("an event must be a JSON object");
  json mapped;
  const json* j = &input;
  if (input.contains("specversion")) {
    auto m = FromCloudEvent(input);
    if (!m.ok()) return m.status();
    mapped = std::move(m).value();
    j = &mapped;
  }
  UsageEvent e;
  if (auto s = RequiredId(*j, "eventId", limits, e.event_id); !s.ok()) return s;
  if (auto s = RequiredId(*j, "organizationId", limits, e.organization_id); !s.ok()) return s;
  if (auto s = CheckOrganizationId(e.organization_id, limits); !s.ok()) return s;
  if (auto s = RequiredId(*j, "eventType", limits, e.event_type); !s.ok()) return s;
  if (auto s = OptionalString(*j, "userId", limits, e.user_id); !s.ok()) return s;
  if (auto s = OptionalString(*j, "resourceId", limits, e.resource_id); !s.ok()) return s;
  if (auto s = OptionalString(*j, "resourceType", limits, e.resource_type); !s.ok()) return s;
  if (auto it = j->find("quantity"); it != j->end() && !it->is_null()) {
    if (!it->is_number()) {
      // JSON has no NaN or Infinity; producers that print them emit strings or invalid JSON.
      return Bad("quantity must be a finite number >= 0, got " + Excerpt(*it));
    }
    double q = it->get<double>();
    if (!std::isfinite(q)) return Bad("quantity must be finite");
    if (q < 0) return Bad("quantity must be >= 0, got " + Excerpt(*it));
    if (q > kMaxQuantity) return Bad("quantity must be at most 1e15, got " + Excerpt(*it));
    e.quantity = q;
  }
  if (auto it = j->find("metadata"); it != j->end() && !it->is_null()) {
    if (!it->is_object()) return Bad("metadata must be a JSON object");
    e.metadata = *it;
  }
  if (auto it = j->find("timestamp"); it != j->end() && !it->is_null()) {
    auto ts = ParseTimestamp(*it);
    if (!ts.ok()) return ts.status();
    e.timestamp_ms = *ts;
  } else {
    e.timestamp_ms = now_ms;
  }
  if (e.timestamp_ms < now_ms - bounds.max_age_ms) {
    return Bad("timestamp " + FormatTimestamp(e.timestamp_ms) + " is more than " +
               std::to_string(bounds.max_age_ms / 86'400'000) + " days before " +
               FormatTimestamp(now_ms));
  }
  if (e.timestamp_ms > now_ms + bounds.max_future_ms) {
    return Bad("timestamp " + FormatTimestamp(e.timestamp_ms) + " is more than " +
               std::to_string(bounds.max_future_ms / 60'000) + " minutes after " +
               FormatTimestamp(now_ms));
  }
  if (catalog != nullptr) {
    for (const auto& m : catalog->metrics) {
      if (!m.Matches(e) || m.skip_if_missing || m.aggregation == Aggregation::kCount) continue;
      bool has = m.aggregation == Aggregation::kUniqueCount
                     ? e.TextProperty(m.value_property).has_value()
                     : e.NumberProperty(m.value_property).has_value();
      if (!has) {
        return Bad(
            m.value_property + " is required for " + e.event_type + " events (metric " +
            m.metric_type + ")" +
            (m.aggregation == Aggregation::kUniqueCount ? "" : " and must be a finite number"));
      }
    }
    if (e.event_type == kSubscriptionChangedEvent) {
      const json* plan = MetadataPath(e.metadata, "plan");
      if (plan == nullptr) plan = MetadataPath(e.metadata, "newPlan");
      if (plan == nullptr || !plan->is_string()) {
        return Bad("billing.subscription_changed needs metadata.plan");
      }
      if (!catalog->FindPlan(plan->get<std::string>())) {
        return Bad("billing.subscription_changed names unknown plan '" + plan->get<std::string>() +
                   "'");
      }
      if (const json* anchor = MetadataPath(e.metadata, "billingAnchorDay")) {
        if (!anchor->is_number_integer() || anchor->get<int64_t>() < 1 ||
            anchor->get<int64_t>() > 31) {
          return Bad("metadata.billingAnchorDay must be an integer 1..31");
        }
      }
    }
  }
  return e;
}

Result<UsageEvent> ParseUsageEvent(std::string_view bytes, int64_t now_ms, const Catalog* catalog,
                                   const EventTimeBounds& bounds, const UsageLimits& limits) {
  auto j = topology::ParseJson(bytes, limits.max_json_depth);
  if (!j.ok()) return Bad("event is " + j.status().message());
  return ParseUsageEvent(*j, now_ms, catalog, bounds, limits);
}

Result<UsageEventBatch> ParseUsageEventBatch(std::string_view body, int64_t now_ms,
                                             const Catalog* catalog, const EventTimeBounds& bounds,
                                             const UsageLimits& limits) {
  auto parsed = topology::ParseJson(body, limits.max_json_depth);
  if (!parsed.ok()) return Bad("body is " + parsed.status().message());
  const json& j = *parsed;
  UsageEventBatch out;
  // Either one event or {"events": [...]}: a body that looks like both is refused, not read as
  // whichever one came first.
  if (j.is_object() && j.contains("events") && (j.contains("eventId") || j.contains("specversion")))
    return Bad("a body is one event or {\"events\": [...]}, not both");
  if (j.is_object() && j.contains("events")) {
    out.batch = true;
    const json& events = j["events"];
    if (!events.is_array() || events.empty()) return Bad("events must be a non-empty array");
    if (events.size() > limits.max_batch_events)
      return Bad("at most " + std::to_string(limits.max_batch_events) + " events per request");
    for (size_t i = 0; i < events.size(); ++i) {
      auto e = ParseUsageEvent(events[i], now_ms, catalog, bounds, limits);
      if (!e.ok()) return Bad("events[" + std::to_string(i) + "]: " + e.status().message());
      out.events.push_back(std::move(e).value());
    }
    return out;
  }
  auto e = ParseUsageEvent(j, now_ms, catalog, bounds, limits);
  if (!e.ok()) return e.status();
  out.events.push_back(std::move(e).value());
  return out;
}

}  // namespace cm::usage
