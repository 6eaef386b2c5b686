#include "processors/webhooks/webhooks_stores.h"

#include <limits>

#include "state/key_codec.h"

namespace cm::webhooks {

std::vector<state::StoreSpec> WebhooksStoreSpecs() {
  auto specs = state::StoreSpec::Logged(
      state::StoreType::kKeyValue,
      {kEndpointsStore, kDeliveriesStore, kHealthStore, kCommandResultsStore});
  for (auto& t : state::StoreSpec::Logged(state::StoreType::kTimer, {kDeliveryTimersStore}))
    specs.push_back(std::move(t));
  // A delivery and its timer are read back at each step (dispatch, outcome), mostly after the
  // commit that wrote them.
  for (auto& spec : specs) {
    spec.cache_writes = spec.name == kDeliveriesStore || spec.name == kDeliveryTimersStore;
  }
  return specs;
}

WebhooksStoreViews WebhooksStoreViews::Live(state::TaskState& task) {
  return {task.key_value_store(kEndpointsStore), task.key_value_store(kDeliveriesStore),
          task.key_value_store(kHealthStore), task.key_value_store(kCommandResultsStore)};
}

WebhooksStoreViews WebhooksStoreViews::Committed(const topology::ReadOnlyStores& stores) {
  return {stores.KeyValue(kEndpointsStore), stores.KeyValue(kDeliveriesStore),
          stores.KeyValue(kHealthStore), stores.KeyValue(kCommandResultsStore)};
}

namespace keys {

std::string Endpoint(std::string_view org, std::string_view webhook) {
  return state::TaggedKey('w', {org, webhook});
}
std::string EndpointsOf(std::string_view org) { return state::TaggedKey('w', {org}); }
std::string AllEndpoints() { return "w"; }
std::string EndpointCount(std::string_view org) { return state::TaggedKey('n', {org}); }
std::string AllEndpointCounts() { return "n"; }
std::string EndpointCountsComplete() { return "v"; }
std::string Delivery(std::string_view org, std::string_view delivery) {
  return state::TaggedKey('d', {org, delivery});
}
std::string Event(std::string_view org, std::string_view event) {
  return state::TaggedKey('e', {org, event});
}
std::string History(std::string_view org, std::string_view webhook, int64_t created_ms,
                    std::string_view delivery) {
  std::string out = state::TaggedKey('h', {org, webhook});
  state::AppendOrderedInt64(out, std::numeric_limits<int64_t>::max() - created_ms);  // newest first
  state::AppendLengthPrefixed(out, delivery);
  return out;
}
std::string HistoryOf(std::string_view org, std::string_view webhook) {
  return state::TaggedKey('h', {org, webhook});
}
std::string Health(std::string_view org, std::string_view webhook, int64_t hour_ms) {
  std::string out = state::TaggedKey('l', {org, webhook});
  state::AppendOrderedInt64(out, hour_ms);
  return out;
}
std::string HealthOf(std::string_view org, std::string_view webhook) {
  return state::TaggedKey('l', {org, webhook});
}

std::optional<std::string> EndpointOrganization(std::string_view key) {
  auto fields = state::ParseTaggedKey(key, 'w', 2);
  if (!fields) return std::nullopt;
  return std::move(fields->front());
}
std::optional<std::string> EndpointCountOrganization(std::string_view key) {
  auto fields = state::ParseTaggedKey(key, 'n', 1);
  if (!fields) return std::nullopt;
  return std::move(fields->front());
}

bool ParseHistory(std::string_view key, int64_t& created_ms, std::string& delivery) {
  size_t pos = 1;
  std::string field;
  for (int i = 0; i < 2; ++i) {
    if (!state::ReadLengthPrefixed(key, pos, field)) return false;
  }
  if (key.size() < pos + 8) return false;
  created_ms = std::numeric_limits<int64_t>::max() - state::ReadOrderedInt64(key.substr(pos, 8));
  pos += 8;
  return state::ReadLengthPrefixed(key, pos, delivery);
}

int64_t HealthHour(std::string_view key) {
  return key.size() < 8 ? 0 : state::ReadOrderedInt64(key.substr(key.size() - 8));
}

}  // namespace keys

}  // namespace cm::webhooks
