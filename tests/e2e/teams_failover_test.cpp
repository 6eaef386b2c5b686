// Two `cmstream run --topology cloudmatrix` instances share the partitions of one `cmstream
// broker`; one is killed with SIGKILL twice while eight clients send a stream of team commands
// (creates in trees, member adds, role changes, removals) over HTTP, retrying each with its
// Idempotency-Key until it is answered. At the end every team, membership, user index entry
// and permission check equals a reference model of the commands, and every event is on
// cloudmatrix.team-events exactly once.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "child_process.h"
#include "kafka_clients.h"
#include "run_instance.h"
#include "test_credentials.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ChildProcess;
using testing::RunInstance;
using testing::WaitFor;

constexpr int kPartitions = 8;
constexpr int kOrgs = 40;
constexpr int kCommandsPerOrg = 30;
constexpr int kClients = 8;
constexpr int kMaxDepth = 5;

std::string OrgName(int k) { return "torg-" + std::to_string(k); }
std::string Founder(const std::string& org) { return "founder-" + org; }

// One organization's teams as the commands make them. The founder creates (and so owns) every
// team, so every generated command is allowed and its answer is known.
struct OrgModel {
  struct Team {
    std::string id;
    std::string name;
    std::string parent;  // "" for a root
    int depth = 1;
    std::map<std::string, std::string> members;  // user -> role
  };
  std::vector<Team> teams;
  int next_user = 0;
  std::map<std::string, int> events;  // type -> count

  Team* Find(const std::string& id) {
    for (auto& t : teams)
      if (t.id == id) return &t;
    return nullptr;
  }
  // The highest role `user` holds in `team` or above it (0 none, 1 member, 2 admin, 3 owner).
  int RoleRank(const std::string& team, const std::string& user) {
    int best = 0;
    for (Team* t = Find(team); t != nullptr; t = t->parent.empty() ? nullptr : Find(t->parent)) {
      auto it = t->members.find(user);
      if (it == t->members.end()) continue;
      best = std::max(best, it->second == "owner" ? 3 : it->second == "admin" ? 2 : 1);
    }
    return best;
  }
};

struct Cluster {
  // Sends until a real answer: a connection failure or 503 (an owner restarting, a rebalance)
  // is retried, on the other instance too, with the same Idempotency-Key.
  std::pair<int, json> Send(const std::string& method, const std::string& path, const json& body,
                            const std::string& key, size_t first) {
    std::pair<int, json> answer{0, json()};
    size_t i = first;
    WaitFor(
        [&] {
          httplib::Client c("127.0.0.1", ports[i++ % ports.size()]);
          c.set_bearer_token_auth(testing::kTestAdminKey);
          c.set_connection_timeout(2);
          c.set_read_timeout(30, 0);
          httplib::Headers h = {{"Idempotency-Key", key}};
          auto r = method == "POST"    ? c.Post(path, h, body.dump(), "application/json")
                   : method == "PATCH" ? c.Patch(path, h, body.dump(), "application/json")
                   : method == "GET"   ? c.Get(path)
                                       : c.Delete(path, h, body.dump(), "application/json");
          if (!r || r->status == 503 || r->status >= 500) return false;
          answer = {r->status, json::parse(r->body, nullptr, false)};
          return true;
        },
        180s, 100ms);
    return answer;
  }
  std::vector<int> ports;
};

TEST(TeamsFailoverTest, SigkilledInstanceAppliesEachTeamCommandOnceAndEmitsEachEventOnce) {
  auto dir =
      std::filesystem::temp_directory_path() / ("cm-e2e-teams-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string info = (dir / "broker.json").string();
  const std::string parts = ":" + std::to_string(kPartitions);
  std::vector<std::string> broker_args = {testing::CmstreamBinary(), "broker", "--info-file", info};
  for (const char* t : {"cloudmatrix.events", "cloudmatrix.commands", "cloudmatrix.quota-alerts",
                        "cloudmatrix.team-events", "cloudmatrix.dlq"}) {
    broker_args.push_back("--topic");
    broker_args.push_back(t + parts);
  }
  ChildProcess broker(broker_args, (dir / "broker.log").string());
  broker.Start();
  ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(info); }, 20s)) << broker.Log();
  json endpoints;
  std::ifstream(info) >> endpoints;
  const std::string bootstrap = endpoints["bootstrap"];
  auto make = [&](const std::string& id) {
    RunInstance in{id, testing::FreePort(), nullptr};
    in.process = std::make_unique<ChildProcess>(
        std::vector<std::string>{
            testing::CmstreamBinary(), "run", "--topology", "cloudmatrix", "--brokers", bootstrap,
            "--broker-admin", endpoints["admin"], "--app-id", "e2e-teams", "--instance-id", id,
            "--state-dir", (dir / id).string(), "--http", "127.0.0.1:" + std::to_string(in.port)},
        (dir / (id + ".log")).string());
    in.process->Start();
    return in;
  };
  RunInstance a = make("a");
  RunInstance b = make("b");
  ASSERT_TRUE(WaitFor([&] { return a.Ready() && b.Ready(); }, 60s))
      << a.process->Log() << b.process->Log();
  Cluster cluster;
  cluster.ports = {a.port, b.port};

  // The clients: each owns the organizations k with k % kClients == its index and sends their
  // commands in turn, one at a time, so each organization's model is applied in order.
  std::vector<OrgModel> models(kOrgs);
  std::atomic<int> done{0};
  std::atomic<int> wrong_answers{0};
  std::mutex report;
  auto client = [&](int index) {
    std::mt19937 rng(20261202 + index);
    for (int step = 0; step < kCommandsPerOrg; ++step) {
      for (int k = index; k < kOrgs; k += kClients) {
        const std::string org = OrgName(k);
        OrgModel& m = models[k];
        const std::string key = org + "-cmd-" + std::to_string(step);
        const std::string actor = Founder(org);
        std::vector<std::pair<std::string, std::string>> non_owners;  // team, user
        for (const auto& t : m.teams)
          for (const auto& [u, r] : t.members)
            if (r != "owner") non_owners.emplace_back(t.id, u);
        const int dice = static_cast<int>(rng() % 10);
        std::pair<int, json> r;
        int expected_status = 200;
        if (m.teams.empty() || (dice < 3 && m.teams.size() < 12)) {
          json body = {{"organizationId", org},
                       {"name", "team " + std::to_string(m.teams.size())},
                       {"actorUserId", actor}};
          std::string parent;
          int depth = 1;
          if (!m.teams.empty() && rng() % 3 != 0) {
            const auto& p = m.teams[rng() % m.teams.size()];
            if (p.depth < kMaxDepth) {
              parent = p.id;
              depth = p.depth + 1;
              body["parentTeamId"] = parent;
            }
          }
          r = cluster.Send("POST", "/v1/teams", body, key, k);
          expected_status = 201;
          if (r.first == 201) {
            OrgModel::Team t{
                r.second.value("id", ""), body["name"].get<std::string>(), parent, depth, {}};
            t.members[actor] = "owner";
            m.teams.push_back(std::move(t));
            m.events["team.created"]++;
            m.events["member.added"]++;
          }
        } else if (dice < 7 || non_owners.empty()) {
          auto& t = m.teams[rng() % m.teams.size()];
          std::string user;  // users are shared across organizations: the index spans them
          do user = "user-" + std::to_string(m.next_user++ % 60);
          while (t.members.contains(user));
          const std::string role = rng() % 2 ? "admin" : "member";
          r = cluster.Send("POST", "/v1/teams/" + t.id + "/members",
                           {{"userId", user}, {"role", role}, {"actorUserId", actor}}, key, k);
          expected_status = 201;
          if (r.first == 201) {
            t.members[user] = role;
            m.events["member.added"]++;
          }
        } else {
          const auto& [team, user] = non_owners[rng() % non_owners.size()];
          auto* t = m.Find(team);
          if (dice < 9) {
            const std::string role = t->members[user] == "admin" ? "member" : "admin";
            r = cluster.Send("PATCH", "/v1/teams/" + team + "/members/" + user,
                             {{"role", role}, {"actorUserId", actor}}, key, k);
            if (r.first == 200) {
              t->members[user] = role;
              m.events["member.role_changed"]++;
            }
          } else {
            r = cluster.Send("DELETE", "/v1/teams/" + team + "/members/" + user,
                             {{"actorUserId", actor}}, key, k);
            if (r.first == 200) {
              t->members.erase(user);
              m.events["member.removed"]++;
            }
          }
        }
        if (r.first != expected_status) {
          ++wrong_answers;
          std::lock_guard lock(report);
          ADD_FAILURE() << org << " " << key << ": " << r.first << " " << r.second.dump();
        }
        ++done;
      }
    }
  };
  std::vector<std::jthread> clients;
  for (int i = 0; i < kClients; ++i) clients.emplace_back(client, i);

  const int total = kOrgs * kCommandsPerOrg;
  for (int kill = 1; kill <= 2; ++kill) {
    ASSERT_TRUE(WaitFor([&] { return done.load() >= total * kill / 3; }, 300s))
        << done.load() << " commands answered";
    std::cout << "kill " << kill << " of b after " << done.load() << " commands\n";
    b.process->Kill(SIGKILL);
    b.process->Start();  // same instance id and state directory
    ASSERT_TRUE(WaitFor([&] { return b.Ready(); }, 120s)) << b.process->Log();
  }
  for (auto& c : clients) c.join();
  std::cout << done.load() << " commands answered\n";
  ASSERT_EQ(wrong_answers.load(), 0);

  // Every team and its members equal the model, read on either instance.
  int teams = 0;
  std::map<std::string, std::set<std::string>> user_teams;  // user -> "team:role"
  for (int k = 0; k < kOrgs; ++k) {
    for (const auto& t : models[k].teams) {
      ++teams;
      auto r = cluster.Send("GET", "/v1/teams/" + t.id + "?includeMembers=true", json(), "", k);
      ASSERT_EQ(r.first, 200) << r.second.dump();
      EXPECT_EQ(r.second["name"], t.name);
      EXPECT_EQ(r.second["parentTeamId"], t.parent.empty() ? json() : json(t.parent)) << t.id;
      std::map<std::string, std::string> members;
      for (const auto& mm : r.second["members"]) members[mm["userId"]] = mm["role"];
      EXPECT_EQ(members, t.members) << t.id;
      for (const auto& [u, role] : t.members) user_teams[u].insert(t.id + ":" + role);
    }
  }
  // Permission checks follow inheritance, as the model computes it.
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    const int k = static_cast<int>(rng() % kOrgs);
    auto& m = models[k];
    const auto& t = m.teams[rng() % m.teams.size()];
    const std::string user = "user-" + std::to_string(rng() % 60);
    auto r = cluster.Send(
        "GET", "/v1/teams/" + t.id + "/permissions/" + user + "/check?permission=members.manage",
        json(), "", i);
    ASSERT_EQ(r.first, 200) << r.second.dump();
    EXPECT_EQ(r.second["allowed"].get<bool>(), m.RoleRank(t.id, user) >= 2)
        << t.id << " " << user << ": " << r.second.dump();
  }
  // The user index (another sub-topology, fed through a repartition topic) agrees.
  for (const auto& [user, expected] : user_teams) {
    if (user.rfind("user-", 0) != 0) continue;
    std::set<std::string> got;
    WaitFor(
        [&] {
          got.clear();
          std::string cursor;
          for (;;) {
            auto r = cluster.Send("GET",
                                  "/v1/users/" + user + "/teams?limit=500" +
                                      (cursor.empty() ? "" : "&cursor=" + cursor),
                                  json(), "", 0);
            if (r.first != 200) return false;
            for (const auto& e : r.second["teams"])
              got.insert(e["teamId"].get<std::string>() + ":" + e["role"].get<std::string>());
            if (!r.second["hasMore"].get<bool>()) break;
            cursor = r.second["nextCursor"];
          }
          return got == expected;
        },
        30s, 200ms);
    EXPECT_EQ(got, expected) << user;
  }

  // Every event once: as many as the model made, each id once, per type.
  std::map<std::string, int> want;
  int want_total = 0;
  for (const auto& m : models)
    for (const auto& [type, n] : m.events) {
      want[type] += n;
      want_total += n;
    }
  testing::TopicReader reader(bootstrap, "cloudmatrix.team-events", kPartitions);
  std::vector<testing::TopicReader::Message> events;
  WaitFor(
      [&] {
        for (auto& e : reader.Poll()) events.push_back(std::move(e));
        return static_cast<int>(events.size()) >= want_total;
      },
      60s);
  for (auto& e : reader.Poll(1000)) events.push_back(std::move(e));  // nothing more may come
  std::set<std::string> ids;
  std::map<std::string, int> got;
  for (const auto& e : events) {
    json j = json::parse(e.value);
    ids.insert(j["id"].get<std::string>());
    got[j["type"].get<std::string>()]++;
  }
  EXPECT_EQ(static_cast<int>(events.size()), want_total);
  EXPECT_EQ(ids.size(), events.size()) << "an event id is on the topic twice";
  EXPECT_EQ(got, want);
  std::cout << teams << " teams, " << events.size() << " events\n";
  if (!HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cm
