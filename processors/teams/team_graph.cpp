#include "processors/teams/team_graph.h"

#include <algorithm>

namespace cm::teams {

using nlohmann::json;

std::string EncodeGrants(const Grants& grants) {
  json out = json::array();
  for (const auto& g : grants) out.push_back({{"teamId", g.team_id}, {"role", RoleName(g.role)}});
  return out.dump();
}

Grants DecodeGrants(std::string_view value) {
  Grants out;
  json j = json::parse(value, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& g : j) {
    auto role = ParseRole(g.value("role", ""));
    if (role) out.push_back({g.value("teamId", ""), *role});
  }
  return out;
}

std::optional<Grant> DecidingGrant(const Grants& grants, std::string_view team_id) {
  std::optional<Grant> best;
  for (const auto& g : grants) {
    if (!best || g.role > best->role ||
        (g.role == best->role && g.team_id == team_id && best->team_id != team_id)) {
      best = g;  // grants are sorted by team id, so the first of equals is the smallest id
    }
  }
  return best;
}

std::optional<std::string> ParentTeamOf(const json& team) {
  auto it = team.find("parentTeamId");
  if (it == team.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::string LowerName(std::string_view name) {
  std::string out(name);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

bool TeamGraph::HasTeam(const std::string& org, const std::string& team) const {
  return views_.teams->Get(keys::TeamKey(org, team)).has_value();
}

std::optional<json> TeamGraph::Team(const std::string& org, const std::string& team) const {
  auto v = views_.teams->Get(keys::TeamKey(org, team));
  if (!v) return std::nullopt;
  json j = json::parse(*v, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  return j;
}

std::optional<std::string> TeamGraph::TeamIdByName(const std::string& org,
                                                   const std::string& name) const {
  return views_.teams->Get(keys::NameKey(org, LowerName(name)));
}

std::vector<std::string> TeamGraph::TeamsOf(const std::string& org) const {
  std::vector<std::string> out;
  views_.teams->PrefixScan(keys::TeamsOfOrgPrefix(org), [&](std::string_view k, std::string_view) {
    out.push_back(keys::LastField(k));
    return true;
  });
  return out;
}

std::vector<std::string> TeamGraph::Children(const std::string& org,
                                             const std::string& parent) const {
  std::vector<std::string> out;
  views_.teams->PrefixScan(keys::ChildrenPrefix(org, parent),
                           [&](std::string_view k, std::string_view) {
                             out.push_back(keys::LastField(k));
                             return true;
                           });
  return out;
}

std::vector<std::string> TeamGraph::Ancestors(const std::string& org,
                                              const std::string& team) const {
  std::vector<std::string> out;
  std::string current = team;
  // Bounded: a tree never has more levels than teams; this guards a corrupt store.
  for (int i = 0; i < 100000; ++i) {
    auto t = Team(org, current);
    if (!t) break;
    auto parent = ParentTeamOf(*t);
    if (!parent) break;
    current = std::move(*parent);
    out.push_back(current);
  }
  return out;
}

std::vector<std::string> TeamGraph::Subtree(const std::string& org, const std::string& team) const {
  std::vector<std::string> out = {team};
  for (size_t i = 0; i < out.size(); ++i) {
    for (auto& c : Children(org, out[i])) out.push_back(std::move(c));
  }
  return out;
}

int TeamGraph::Height(const std::string& org, const std::string& team) const {
  int best = 0;
  for (const auto& c : Children(org, team)) best = std::max(best, Height(org, c));
  return best + 1;
}

std::vector<json> TeamGraph::Memberships(const std::string& org, const std::string& team) const {
  std::vector<json> out;
  views_.members->PrefixScan(keys::MembersPrefix(org, team),
                             [&](std::string_view, std::string_view v) {
                               json m = json::parse(v, nullptr, false);
                               if (m.is_object()) out.push_back(std::move(m));
                               return true;
                             });
  return out;
}

std::map<std::string, Role> TeamGraph::Members(const std::string& org,
                                               const std::string& team) const {
  std::map<std::string, Role> out;
  for (const auto& m : Memberships(org, team)) {
    if (auto r = ParseRole(m.value("role", ""))) out.emplace(m.value("userId", ""), *r);
  }
  return out;
}

std::optional<Role> TeamGraph::RoleIn(const std::string& org, const std::string& team,
                                      const std::string& user) const {
  auto v = views_.members->Get(keys::MemberKey(org, team, user));
  if (!v) return std::nullopt;
  json m = json::parse(*v, nullptr, false);
  if (!m.is_object()) return std::nullopt;
  return ParseRole(m.value("role", ""));
}

Grants TeamGraph::MaterializedGrants(const std::string& org, const std::string& team,
                                     const std::string& user) const {
  auto v = views_.permissions->Get(keys::GrantsKey(org, team, user));
  return v ? DecodeGrants(*v) : Grants{};
}

std::map<std::string, Grants> TeamGraph::MaterializedGrantsOf(const std::string& org,
                                                              const std::string& team) const {
  std::map<std::string, Grants> out;
  views_.permissions->PrefixScan(keys::GrantsPrefix(org, team),
                                 [&](std::string_view k, std::string_view v) {
                                   out.emplace(keys::LastField(k), DecodeGrants(v));
                                   return true;
                                 });
  return out;
}

std::map<std::string, Grants> TeamGraph::NaiveGrantsOf(const std::string& org,
                                                       const std::string& team) const {
  std::map<std::string, Grants> out;
  std::vector<std::string> path = Ancestors(org, team);
  path.push_back(team);
  for (const auto& t : path) {
    for (const auto& [user, role] : Members(org, t)) out[user].push_back({t, role});
  }
  for (auto& [user, grants] : out) {
    std::sort(grants.begin(), grants.end(),
              [](const Grant& a, const Grant& b) { return a.team_id < b.team_id; });
  }
  return out;
}

}  // namespace cm::teams
