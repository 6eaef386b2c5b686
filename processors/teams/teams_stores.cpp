#include "processors/teams/teams_stores.h"

#include "state/key_codec.h"

namespace cm::teams {

std::vector<state::StoreSpec> TeamsStoreSpecs() {
  return state::StoreSpec::Logged(
      state::StoreType::kKeyValue,
      {kTeamsStore, kMembersStore, kPermissionsStore, kInvitationsStore, kCommandResultsStore});
}

TeamsStoreViews TeamsStoreViews::Live(state::TaskState& task) {
  return {task.key_value_store(kTeamsStore), task.key_value_store(kMembersStore),
          task.key_value_store(kPermissionsStore), task.key_value_store(kInvitationsStore),
          task.key_value_store(kCommandResultsStore)};
}

TeamsStoreViews TeamsStoreViews::Committed(const topology::ReadOnlyStores& stores) {
  return {stores.KeyValue(kTeamsStore), stores.KeyValue(kMembersStore),
          stores.KeyValue(kPermissionsStore), stores.KeyValue(kInvitationsStore),
          stores.KeyValue(kCommandResultsStore)};
}

namespace keys {

std::string TeamKey(std::string_view org, std::string_view team) {
  return state::TaggedKey('t', {org, team});
}
std::string TeamsOfOrgPrefix(std::string_view org) { return state::TaggedKey('t', {org}); }
std::string NameKey(std::string_view org, std::string_view lower_name) {
  return state::TaggedKey('n', {org, lower_name});
}
std::string ChildKey(std::string_view org, std::string_view parent, std::string_view child) {
  return state::TaggedKey('c', {org, parent, child});
}
std::string ChildrenPrefix(std::string_view org, std::string_view parent) {
  return state::TaggedKey('c', {org, parent});
}
std::string MemberKey(std::string_view org, std::string_view team, std::string_view user) {
  return state::TaggedKey('m', {org, team, user});
}
std::string MembersPrefix(std::string_view org, std::string_view team) {
  return state::TaggedKey('m', {org, team});
}
std::string GrantsKey(std::string_view org, std::string_view team, std::string_view user) {
  return state::TaggedKey('p', {org, team, user});
}
std::string GrantsPrefix(std::string_view org, std::string_view team) {
  return state::TaggedKey('p', {org, team});
}
std::string InvitationKey(std::string_view org, std::string_view invitation_id) {
  return state::TaggedKey('i', {org, invitation_id});
}
std::string TokenHashKey(std::string_view token_hash) {
  return state::TaggedKey('h', {token_hash});
}
std::string UserTeamKey(std::string_view user, std::string_view org, std::string_view team) {
  return state::TaggedKey('u', {user, org, team});
}
std::string UserTeamsPrefix(std::string_view user) { return state::TaggedKey('u', {user}); }
std::string LastField(std::string_view key) {
  size_t pos = 1;
  std::string field;
  while (pos < key.size()) {
    if (!state::ReadLengthPrefixed(key, pos, field)) return "";
  }
  return field;
}

}  // namespace keys

}  // namespace cm::teams
