#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "processors/usage/usage_limits.h"
#include "state/status.h"

namespace cm::usage {

struct Catalog;

// The seeds' UsageEvent (DESIGN §4 event envelope), validated and normalized.
struct UsageEvent {
  std::string event_id;
  std::string organization_id;
  std::optional<std::string> user_id;
  std::string event_type;
  std::optional<std::string> resource_id;
  std::optional<std::string> resource_type;
  std::optional<double> quantity;  // finite, >= 0; absent when the producer sent none
  nlohmann::json metadata = nlohmann::json::object();
  int64_t timestamp_ms = 0;  // event time

  // camelCase JSON with an ISO-8601 timestamp: what POST /v1/usage/events appends.
  nlohmann::json ToJson() const;

  // A property by the catalog's names: eventId, organizationId, userId, eventType, resourceId,
  // resourceType, quantity, or metadata.<key>[.<key>...]. Strings as they are, numbers and
  // booleans in their JSON spelling.
  std::optional<std::string> TextProperty(std::string_view path) const;
  // quantity, or a numeric metadata.<path>; nullopt when absent or not a finite number.
  std::optional<double> NumberProperty(std::string_view path) const;
};

// How old or how far ahead of "now" an event time may be.
struct EventTimeBounds {
  int64_t max_age_ms = 35LL * 24 * 3'600'000;  // 35 days
  int64_t max_future_ms = 5 * 60'000;          // 5 minutes
};

// An organizationId is a path segment of every query route (/v1/usage/orgs/{org}/...): 1 to
// limits.max_id_bytes bytes without '/' or control characters, so that every id accepted can be
// read back. The one rule for ingest and every route. InvalidArgument naming `field` otherwise.
state::Status CheckOrganizationId(std::string_view id, const UsageLimits& limits,
                                  std::string_view field = "organizationId");
inline constexpr double kMaxQuantity = 1e15;
// An event as appended to the events topic is at most limits.max_event_bytes: a larger one is a
// client error (400, or the DLQ), never a broker error after part of a batch was appended.

// Validates one event in the seeds' shape or as a CloudEvents 1.0 JSON envelope (structured
// mode) and maps it onto UsageEvent. Returns InvalidArgument with a precise reason.
//
// `now_ms` bounds the event time: it may be at most 35 days older and 5 minutes newer. HTTP
// passes its wall clock; the processor passes the record's Kafka timestamp (set by the producer
// when the event was appended), never the wall clock, so a replay judges every event exactly
// as the first run did. An event without a timestamp takes `now_ms` as its time.
//
// CloudEvents mapping: id -> eventId, type -> eventType, time -> timestamp, subject ->
// resourceId (unless data.resourceId), data.{organizationId,userId,resourceId,resourceType,
// quantity,metadata} -> the same fields, extension attributes organizationid / userid as
// fallbacks for organizationId / userId, source -> metadata.source (unless set).
// datacontenttype, when present, must be JSON; data_base64 is refused.
//
// With a catalog, also checks what the catalog needs: the value property of every metric the
// event feeds (e.g. quantity for storage_bytes), and a known plan in billing.subscription_changed.
//
// `limits` bounds ids (max_id_bytes) and, for bytes, the nesting depth (max_json_depth).
state::Result<UsageEvent> ParseUsageEvent(const nlohmann::json& json, int64_t now_ms,
                                          const Catalog* catalog = nullptr,
                                          const EventTimeBounds& bounds = {},
                                          const UsageLimits& limits = {});
state::Result<UsageEvent> ParseUsageEvent(std::string_view bytes, int64_t now_ms,
                                          const Catalog* catalog = nullptr,
                                          const EventTimeBounds& bounds = {},
                                          const UsageLimits& limits = {});
// The body of POST /v1/usage/events, parsed once: its events and which shape it had, since
// the answer to a batch lists every eventId and the answer to one event names it.
struct UsageEventBatch {
  std::vector<UsageEvent> events;
  bool batch = false;  // {"events": [...]} rather than one event
};

// One event, or {"events": [...]} (1..limits.max_batch_events events). All or nothing: the
// first invalid event's reason is returned, prefixed by "events[i]: ".
state::Result<UsageEventBatch> ParseUsageEventBatch(std::string_view body, int64_t now_ms,
                                                    const Catalog* catalog = nullptr,
                                                    const EventTimeBounds& bounds = {},
                                                    const UsageLimits& limits = {});

inline constexpr char kSubscriptionChangedEvent[] = "billing.subscription_changed";

}  // namespace cm::usage
