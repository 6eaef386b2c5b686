#include "processors/webhooks/webhooks_processor.h"

#include <chrono>
#include <map>
#include <random>

#include "processors/webhooks/circuit_breaker.h"
#include "processors/webhooks/webhook_sender.h"
#include "processors/webhooks/webhook_views.h"
#include "processors/webhooks/webhooks_commands.h"
#include "processors/webhooks/webhooks_stores.h"
#include "state/key_codec.h"
#include "topology/common/entity_id.h"
#include "topology/common/json.h"
#include "topology/common/timestamp.h"

namespace cm::webhooks {

using nlohmann::json;
using topology::FormatTimestamp;
using topology::Record;

namespace {

json NotFound(const std::string& field, const std::string& id) {
  return ErrorBody("not_found", "no such " + field.substr(0, field.size() - 2),
                   {{"field", field}, {field, id}});
}

}  // namespace

WebhooksProcessor::WebhooksProcessor(std::shared_ptr<const WebhooksOptions> options)
    : options_(std::move(options)) {}

WebhooksProcessor::~WebhooksProcessor() {
  options_->counters->parked -= static_cast<int64_t>(parked_ids_.size());
  options_->counters->held -= static_cast<int64_t>(held_count_);
}

void WebhooksProcessor::Init(topology::ProcessorContext& context) {
  context_ = &context;
  endpoints_ = &context.GetKeyValueStore(kEndpointsStore);
  deliveries_ = &context.GetKeyValueStore(kDeliveriesStore);
  health_ = &context.GetKeyValueStore(kHealthStore);
  results_.emplace(context.GetKeyValueStore(kCommandResultsStore));
  timers_ = &context.GetTimerStore(kDeliveryTimersStore);
  std::random_device random;
  counts_token_ = std::to_string(random()) + '-' + std::to_string(random());
  // processQueue runs on the wall clock: deliveries are due in real time, records or not.
  context.Schedule(std::chrono::milliseconds(options_->queue_interval_ms),
                   topology::PunctuationType::kWallClockTime,
                   [this](int64_t now) { ProcessQueue(now); });
}

void WebhooksProcessor::Process(const Record& record) {
  if (record.topic == options_->commands_topic) {
    ProcessCommand(record);
  } else if (record.topic == options_->attempts_topic) {
    auto outcome = AttemptOutcome::FromJson(record.value);
    if (!outcome.ok() || outcome->organization != record.key) {
      context_->SendToDlq(record, "webhook attempt outcome: " +
                                      (outcome.ok() ? std::string("organizationId is not the key")
                                                    : outcome.status().message()));
      return;
    }
    ApplyOutcome(*outcome, record.timestamp_ms);
  } else {
    ProcessEvent(record);
  }
}

void WebhooksProcessor::ProcessCommand(const Record& record) {
  auto parsed = topology::ParseJson(record.value, static_cast<int>(options_->max_json_depth));
  // Malformed commands are the usage processor's to report (it reads the same records).
  if (!parsed.ok() || !parsed->is_object()) return;
  const json& cmd = *parsed;
  const std::string type = topology::StringField(cmd, "type");
  if (type.rfind("webhooks.", 0) != 0) return;  // another application's command
  const std::string id = topology::StringField(cmd, "commandId");
  if (id.empty() || id.size() > 256) {
    context_->SendToDlq(record, "webhooks command needs a commandId (a string of 1..256 bytes)");
    return;
  }
  if (results_->Applied(id)) return;  // applied before: a retry changes nothing
  Command c{type, id, topology::StringField(cmd, "organizationId"), record.timestamp_ms, &cmd};
  Outcome outcome;
  if (c.org.empty() || c.org != record.key) {
    outcome = {400, ErrorBody("validation_error",
                              "organizationId is required and must equal the record key",
                              {{"field", "organizationId"}})};
  } else if (auto s = topology::CheckId(c.org, options_->max_id_bytes, "organizationId"); !s.ok()) {
    outcome = {400, ErrorBody("validation_error", s.message(), {{"field", "organizationId"}})};
  } else if (auto error = CheckCommandFields(type, cmd, *options_)) {
    outcome = {400, std::move(*error)};
  } else {
    outcome = Apply(c);
  }
  std::optional<std::string> request_hash;
  if (cmd.contains("requestHash") && cmd["requestHash"].is_string())
    request_hash = cmd["requestHash"].get<std::string>();
  results_->Record({id, type, c.org, outcome.status, outcome.body, request_hash, c.now});
}

WebhooksProcessor::Outcome WebhooksProcessor::Apply(const Command& c) {
  if (c.type == kRegister) return Register(c);
  if (c.type == kUpdate) return Update(c);
  if (c.type == kDelete) return Delete(c);
  if (c.type == kEnqueueEvent) return Enqueue(c);
  if (c.type == kRetryDelivery) return RetryDelivery(c);
  if (c.type == kSendTest) return SendTest(c);
  if (c.type == kResetCircuit) return ResetCircuit(c);
  return {400, ErrorBody("validation_error", "unknown webhooks command type '" + c.type + "'")};
}

WebhooksProcessor::Outcome WebhooksProcessor::Register(const Command& c) {
  const json& f = *c.fields;
  const std::string id = f["webhookId"].get<std::string>();
  if (topology::OrganizationOfEntityId(id, 'w') != c.org)
    return {400, ErrorBody("validation_error", "webhookId is not a webhook id of this organization",
                           {{"field", "webhookId"}})};
  if (LoadEndpoint(c.org, id)) return {409, ErrorBody("conflict", "the webhook exists")};
  const uint64_t count = EndpointCount(c.org);
  if (count >= options_->max_webhooks_per_org)
    return {429, ErrorBody("quota_exceeded",
                           "an organization has at most " +
                               std::to_string(options_->max_webhooks_per_org) + " webhooks",
                           {{"limit", options_->max_webhooks_per_org}})};
  const std::string now = FormatTimestamp(c.now);
  json endpoint = {
      {"id", id},
      {"organizationId", c.org},
      {"url", f["url"]},
      {"events", f["events"]},
      {"active", f.value("active", true)},
      {"description",
       f.value("description", json("")).is_string() ? f.value("description", json("")) : json("")},
      {"headers",
       f.contains("headers") && f["headers"].is_object() ? f["headers"] : json::object()},
      {"createdBy", f["createdBy"]},
      {"createdAt", now},
      {"updatedAt", now},
      {"secrets", json::array({{{"secret", f["secret"]}, {"expiresAtMs", nullptr}}})},
      {"stats",
       {{"totalDeliveries", 0},
        {"successfulDeliveries", 0},
        {"failedDeliveries", 0},
        {"averageResponseTimeMs", 0},
        {"lastDeliveryAt", nullptr},
        {"lastDeliveryStatus", nullptr}}},
      {"responseTimeSumMs", 0},
      {"circuit", CircuitBreaker().ToJson()}};
  SaveEndpoint(endpoint);
  SaveEndpointCount(c.org, count + 1);
  json body = WebhookView(endpoint);
  body["secret"] = f["secret"];  // shown this once
  return {201, body};
}

WebhooksProcessor::Outcome WebhooksProcessor::Update(const Command& c) {
  const json& f = *c.fields;
  const std::string id = f["webhookId"].get<std::string>();
  auto endpoint = LoadEndpoint(c.org, id);
  if (!endpoint) return {404, NotFound("webhookId", id)};
  json& e = *endpoint;
  bool reset_circuit = false;
  if (f.contains("url") && f["url"] != e["url"]) {
    e["url"] = f["url"];
    reset_circuit = true;  // another endpoint: its health starts afresh
  }
  if (f.contains("events")) e["events"] = f["events"];
  if (f.contains("description") && f["description"].is_string())
    e["description"] = f["description"];
  if (f.contains("headers") && f["headers"].is_object()) e["headers"] = f["headers"];
  if (f.contains("active")) {
    const bool active = f["active"].get<bool>();
    if (active && !e.value("active", true)) reset_circuit = true;  // re-enabled by its owner
    e["active"] = active;
    if (active) e.erase("disabledReason");
  }
  if (reset_circuit) e["circuit"] = CircuitBreaker().ToJson();
  json body;
  if (f.contains("newSecret")) {
    // The old secret keeps signing beside the new one for the overlap, so receivers can switch.
    json secrets = json::array({{{"secret", f["newSecret"]}, {"expiresAtMs", nullptr}}});
    for (const auto& s : e.value("secrets", json::array())) {
      if (!s.is_object()) continue;
      const json expires = s.value("expiresAtMs", json());
      if (expires.is_null()) {
        secrets.push_back({{"secret", s.value("secret", "")},
                           {"expiresAtMs", c.now + options_->secret_overlap_ms}});
      } else if (expires.is_number_integer() && expires.get<int64_t>() > c.now) {
        secrets.push_back(s);
      }
    }
    e["secrets"] = std::move(secrets);
  }
  e["updatedAt"] = FormatTimestamp(c.now);
  SaveEndpoint(e);
  body = WebhookView(e);
  if (f.contains("newSecret")) body["secret"] = f["newSecret"];
  if (reset_circuit) DueNow(c.org, id, c.now);
  return {200, body};
}

WebhooksProcessor::Outcome WebhooksProcessor::Delete(const Command& c) {
  const std::string id = (*c.fields)["webhookId"].get<std::string>();
  if (!LoadEndpoint(c.org, id)) return {404, NotFound("webhookId", id)};
  Forget(id);
  int cancelled = 0;
  std::vector<std::string> history;
  deliveries_->PrefixScan(keys::HistoryOf(c.org, id), [&](std::string_view key, std::string_view) {
    history.emplace_back(key);
    return true;
  });
  for (const auto& key : history) {
    int64_t created = 0;
    std::string delivery_id;
    if (!keys::ParseHistory(key, created, delivery_id)) continue;
    auto d = LoadDelivery(c.org, delivery_id);
    if (d && Cancel(*d, "the webhook was deleted", c.now)) {
      ++cancelled;
      SaveDelivery(*d);
    }
    deliveries_->Delete(key);
  }
  std::vector<std::string> hours;
  health_->PrefixScan(keys::HealthOf(c.org, id), [&](std::string_view key, std::string_view) {
    hours.emplace_back(key);
    return true;
  });
  for (const auto& key : hours) health_->Delete(key);
  const uint64_t count = EndpointCount(c.org);  // before the delete, which a recount would miss
  endpoints_->Delete(keys::Endpoint(c.org, id));
  SaveEndpointCount(c.org, count > 0 ? count - 1 : 0);
  return {200, {{"deleted", true}, {"cancelledDeliveries", cancelled}}};
}

WebhooksProcessor::Outcome WebhooksProcessor::Enqueue(const Command& c) {
  const json& e = (*c.fields)["event"];
  Event event{c.org, e["eventId"].get<std::string>(), e["eventType"].get<std::string>(),
              e.contains("occurredAt") && e["occurredAt"].is_string()
                  ? e["occurredAt"].get<std::string>()
              : e.contains("occurredAt") && e["occurredAt"].is_number_integer()
                  ? FormatTimestamp(e["occurredAt"].get<int64_t>())
                  : FormatTimestamp(c.now),
              e.contains("data") && e["data"].is_object() ? e["data"] : json::object()};
  auto webhooks = FanOut(event, Endpoints(c.org), c.now);
  return {202, {{"queued", webhooks.size()}, {"webhookIds", webhooks}, {"eventId", event.id}}};
}

WebhooksProcessor::Outcome WebhooksProcessor::RetryDelivery(const Command& c) {
  const std::string id = (*c.fields)["deliveryId"].get<std::string>();
  auto delivery = LoadDelivery(c.org, id);
  if (!delivery) return {404, NotFound("deliveryId", id)};
  json& d = *delivery;
  const std::string status = d.value("status", "");
  if (status == "in_progress" || status == "pending")
    return {409, ErrorBody("conflict", "the delivery is " + status + "; it is retried already",
                           {{"status", status}})};
  auto endpoint = LoadEndpoint(c.org, d.value("webhookId", ""));
  if (!endpoint)
    return {409, ErrorBody("conflict", "the delivery's webhook was deleted", {{"status", status}})};
  // A manual retry starts a fresh schedule: its attempts and age count from now.
  d["status"] = "pending";
  d["retryBaseMs"] = c.now;
  d["retryBaseAttempts"] = d.value("attemptNumber", 0);
  d["scheduledAt"] = FormatTimestamp(c.now);
  d["scheduledAtMs"] = c.now;
  d.erase("nextRetryAt");
  SaveDelivery(d);
  timers_->Schedule(id, c.now, "");
  return {202, DeliveryResultView(d)};
}

WebhooksProcessor::Outcome WebhooksProcessor::SendTest(const Command& c) {
  const json& f = *c.fields;
  const std::string id = f["webhookId"].get<std::string>();
  auto endpoint = LoadEndpoint(c.org, id);
  if (!endpoint) return {404, NotFound("webhookId", id)};
  Event event{c.org,
              f["eventId"].get<std::string>(),
              "webhook.test",
              FormatTimestamp(c.now),
              {{"webhookId", id}, {"message", "a test event sent by sendTestEvent"}}};
  FanOut(event, std::vector<json>(1, *endpoint), c.now, id);
  const std::string delivery_id = topology::EntityIdFor(c.org, 'd', event.id + '\0' + id);
  auto d = LoadDelivery(c.org, delivery_id);
  if (!d) return {500, ErrorBody("internal", "the test delivery was not made")};
  return {202, DeliveryResultView(*d)};
}

WebhooksProcessor::Outcome WebhooksProcessor::ResetCircuit(const Command& c) {
  const std::string id = (*c.fields)["webhookId"].get<std::string>();
  auto endpoint = LoadEndpoint(c.org, id);
  if (!endpoint) return {404, NotFound("webhookId", id)};
  (*endpoint)["circuit"] = CircuitBreaker().ToJson();
  SaveEndpoint(*endpoint);
  DueNow(c.org, id, c.now);
  return {200, {{"reset", true}, {"circuit", CircuitBreaker().ToCircuitState(id)}}};
}

// --- store helpers ----------------------------------------------------------------------------

std::optional<json> WebhooksProcessor::LoadEndpoint(const std::string& org, const std::string& id) {
  const std::string key = keys::Endpoint(org, id);
  auto v = endpoints_->Get(key);
  if (!v) return std::nullopt;
  const json* parsed = ParsedEndpoint(key, *v);
  if (parsed == nullptr) return std::nullopt;
  return *parsed;
}

const json* WebhooksProcessor::ParsedEndpoint(std::string_view key, std::string_view raw) {
  // At most this many parsed endpoints are kept (a task serves up to max_webhooks_per_org per
  // organization, and the busy ones come back at once).
  constexpr size_t kMaxParsedEndpoints = 1024;
  std::string owned_key(key);
  auto it = parsed_endpoints_.find(owned_key);
  if (it != parsed_endpoints_.end() && it->second.first == raw) return &it->second.second;
  auto j = json::parse(raw, nullptr, false);
  if (j.is_discarded()) return nullptr;
  if (it == parsed_endpoints_.end()) {
    if (parsed_endpoints_.size() >= kMaxParsedEndpoints) parsed_endpoints_.clear();
    it = parsed_endpoints_.emplace(std::move(owned_key), std::pair<std::string, json>()).first;
  }
  it->second = {std::string(raw), std::move(j)};
  return &it->second.second;
}

void WebhooksProcessor::SaveEndpoint(const json& e) {
  std::string key = keys::Endpoint(e.value("organizationId", ""), e.value("id", ""));
  std::string value = e.dump();
  endpoints_->Put(key, value);
  // The next load finds what was just written without parsing it again. `e` is what parsing
  // `value` gives back, but for number kinds (a non-negative integer parses as unsigned), which
  // compare, dump and read as integers alike.
  if (auto it = parsed_endpoints_.find(key); it != parsed_endpoints_.end())
    it->second = {std::move(value), e};
}

uint64_t WebhooksProcessor::EndpointCount(const std::string& org) {
  // The mark is read from the store each time rather than remembered: a record whose
  // processing fails takes a count's writes back with the rest of its writes.
  if (endpoints_->Get(keys::EndpointCountsComplete()) != counts_token_) CountEndpoints();
  auto v = endpoints_->Get(keys::EndpointCount(org));
  return v && v->size() == sizeof(uint64_t) ? state::ReadUint64(*v) : 0;
}

void WebhooksProcessor::CountEndpoints() {
  std::map<std::string, uint64_t, std::less<>> counts;
  endpoints_->PrefixScan(keys::AllEndpoints(), [&](std::string_view key, std::string_view) {
    if (auto org = keys::EndpointOrganization(key)) ++counts[*org];
    return true;
  });
  std::vector<std::string> stale;  // counts of organizations whose endpoints are all gone
  endpoints_->PrefixScan(keys::AllEndpointCounts(), [&](std::string_view key, std::string_view) {
    auto org = keys::EndpointCountOrganization(key);
    if (org && !counts.contains(*org)) stale.emplace_back(key);
    return true;
  });
  for (const auto& key : stale) endpoints_->Delete(key);
  for (const auto& [org, n] : counts) SaveEndpointCount(org, n);
  endpoints_->Put(keys::EndpointCountsComplete(), counts_token_);
}

void WebhooksProcessor::SaveEndpointCount(const std::string& org, uint64_t count) {
  if (count == 0) {
    endpoints_->Delete(keys::EndpointCount(org));
    return;
  }
  std::string value;
  state::AppendUint64(value, count);
  endpoints_->Put(keys::EndpointCount(org), value);
}

std::optional<json> WebhooksProcessor::LoadDelivery(const std::string& org, const std::string& id) {
  auto v = deliveries_->Get(keys::Delivery(org, id));
  if (!v) return std::nullopt;
  auto j = json::parse(*v, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

void WebhooksProcessor::SaveDelivery(const json& d) {
  const std::string org = d.value("organizationId", "");
  const std::string id = d.value("id", "");
  deliveries_->Put(keys::Delivery(org, id), d.dump());
  deliveries_->Put(
      keys::History(org, d.value("webhookId", ""), d.value("createdAtMs", int64_t{0}), id),
      d.value("status", ""));
}

bool WebhooksProcessor::Cancel(json& d, const std::string& why, int64_t now) {
  const std::string status = d.value("status", "");
  if (status != "pending" && status != "in_progress") return false;
  d["status"] = "cancelled";
  d["errorMessage"] = why;
  d["finishedAt"] = FormatTimestamp(now);
  d.erase("leaseUntilMs");
  d.erase("nextRetryAt");
  timers_->Cancel(d.value("id", ""));
  return true;
}

void WebhooksProcessor::DueNow(const std::string& org, const std::string& webhook, int64_t now) {
  Forget(webhook);
  for (const auto& d : PendingDeliveries(org, webhook)) timers_->Schedule(d, now, "");
}

std::vector<std::string> WebhooksProcessor::PendingDeliveries(const std::string& org,
                                                              const std::string& webhook) {
  std::vector<std::string> out;
  deliveries_->PrefixScan(keys::HistoryOf(org, webhook),
                          [&](std::string_view key, std::string_view status) {
                            int64_t created = 0;
                            std::string id;
                            if (status == "pending" && keys::ParseHistory(key, created, id))
                              out.push_back(std::move(id));
                            return true;
                          });
  return out;
}

}  // namespace cm::webhooks
