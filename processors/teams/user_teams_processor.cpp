#include "processors/teams/user_teams_processor.h"

#include <vector>

#include "processors/teams/teams_stores.h"
#include "state/key_codec.h"
#include "topology/common/crypto.h"

namespace cm::teams {

using nlohmann::json;

void UserTeamsProcessor::Init(topology::ProcessorContext& context) {
  context_ = &context;
  index_ = &context.GetKeyValueStore(kUserTeamsStore);
}

void UserTeamsProcessor::Process(const topology::Record& record) {
  json entry = json::parse(record.value, nullptr, false);
  if (!entry.is_object() || !entry.value("organizationId", json()).is_string() ||
      !entry.value("teamId", json()).is_string() || !entry.value("userId", json()).is_string() ||
      entry["userId"] != record.key) {
    context_->SendToDlq(record,
                        "a user index entry needs organizationId, teamId and the userId "
                        "of its key");
    return;
  }
  const std::string key = keys::UserTeamKey(record.key, entry["organizationId"].get<std::string>(),
                                            entry["teamId"].get<std::string>());
  if (entry.value("removed", false)) {
    index_->Delete(key);
  } else {
    index_->Put(key, record.value);
  }
}

state::Result<json> GetUserTeams(state::ReadOnlyKeyValueStore& index, const UserTeamsPage& page,
                                 const std::function<bool(const json&)>& visible) {
  const std::string prefix = keys::UserTeamsPrefix(page.user);
  std::string begin = prefix;
  if (!page.cursor.empty()) {
    auto after = topology::HexDecode(page.cursor);
    if (!after || after->rfind(prefix, 0) != 0)
      return state::Status::InvalidArgument("cursor is not one this route returned");
    begin = *after;
    begin.push_back('\0');  // the first key after the cursor's
  }
  const std::string end = state::PrefixSuccessor(prefix);
  json teams = json::array();
  bool has_more = false;
  std::string last;
  size_t total = 0;
  index.Range(begin, end, [&](std::string_view k, std::string_view v) {
    json entry = json::parse(v, nullptr, false);
    if (!entry.is_object() || !visible(entry)) return true;
    if (teams.size() == page.limit) {
      has_more = true;
      return false;
    }
    teams.push_back(std::move(entry));
    last.assign(k);
    return true;
  });
  index.PrefixScan(prefix, [&](std::string_view, std::string_view v) {
    json entry = json::parse(v, nullptr, false);
    if (entry.is_object() && visible(entry)) ++total;
    return true;
  });
  return json{{"userId", page.user},
              {"teams", std::move(teams)},
              {"total", total},
              {"hasMore", has_more},
              {"nextCursor", has_more ? json(topology::HexEncode(last)) : json()}};
}

}  // namespace cm::teams
