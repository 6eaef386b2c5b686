// Teams at size (issue 10): one `cmstream run --embedded` child process with Postgres snapshots
// is loaded over HTTP with 1,000 organizations, 20,000 teams in trees up to 8 levels deep and
// 200,000 memberships (commands/s applied); then checkPermission and getEffectivePermissions
// are timed over loopback HTTP, and the same check as the README's recursive CTE over the
// snapshot tables right after each, in one run. Goal: checkPermission p99 under 1 ms, and
// faster than the CTE.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <pqxx/pqxx>
#include <random>
#include <thread>

#include "bench_common.h"
#include "cmstream_process.h"

using namespace cm::bench;
using nlohmann::json;

extern char** environ;

namespace {

struct Options {
  std::string cmstream = CM_BINARY_DIR "/cmstream";
  std::string database_url = "postgresql://cmstream:cmstream@127.0.0.1:5432/cmstream";
  int orgs = 1000;
  int teams_per_org = 20;
  int max_depth = 8;
  int memberships = 200000;
  int users = 20000;
  // Each command waits ~0.5 s on the embedded broker (see ops/bench/README.md), so commands/s
  // is about clients / 0.5 s: 256 loads the full size in ~8 minutes, 64 would take ~26.
  int clients = 256;
  int queries = 20000;
  int runs = 3;
  uint64_t seed = 10;
  std::string snapshot_interval = "5s";
  bool keep = false;
};

// Roles as the CTE ranks them: member 1, admin 2, owner 3. members.manage needs admin.
constexpr int kMember = 1, kAdmin = 2, kOwner = 3;
const char* RoleName(int role) {
  return role == kOwner ? "owner" : role == kAdmin ? "admin" : "member";
}

// Runs a command to completion; its output goes to `log`.
void RunOrDie(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    std::vector<char*> args;
    for (auto a : argv) args.push_back(::strdup(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    Die(argv[0] + " " + argv[1] + " failed; see " + log);
}

// `cmstream run --embedded` as a child process with snapshots into `schema`, killed at the end.
class Instance : public CmstreamProcess {
 public:
  Instance(const Options& o, const std::filesystem::path& dir, const std::string& schema)
      : CmstreamProcess(o.cmstream, dir,
                        {"--topology", "cloudmatrix", "--http-threads",
                         std::to_string(std::max(64, o.clients)), "--database-url", o.database_url,
                         "--database-schema", schema, "--snapshot-interval", o.snapshot_interval}) {
  }
};

// ---------------------------------------------------------------------------------------------
// The generated organizations: teams in creation order (parents first) and memberships.

struct Team {
  int org = 0;
  int parent = -1;  // index into Model::teams
  int depth = 1;    // a root is level 1, as the README counts
  std::string name;
  std::string id;  // known once created
  bool created = false;
  std::vector<int> descendants;  // strict, every level
};

struct Membership {
  int team = 0;
  int user = 0;
  int role = kMember;
  bool applied = false;
};

struct Model {
  std::vector<std::string> orgs;
  std::vector<Team> teams;
  std::vector<std::pair<int, int>> org_teams;     // [first, end) per organization
  std::vector<std::vector<int>> org_memberships;  // indexes into memberships
  std::vector<Membership> memberships;
  std::vector<std::string> users;
  std::vector<std::pair<int, int>> org_users;  // each organization's window of the pool
  // The highest role a user holds on each team's path from its root, for applied memberships.
  std::map<std::pair<int, int>, int> direct;  // (team, user) -> role

  int Expected(int team, int user) const {
    int best = 0;
    for (int t = team; t >= 0; t = teams[static_cast<size_t>(t)].parent) {
      auto it = direct.find({t, user});
      if (it != direct.end()) best = std::max(best, it->second);
    }
    return best;
  }
};

std::string Creator(const std::string& org) { return "creator-" + org; }

Model Generate(const Options& o) {
  std::mt19937_64 rng(o.seed);
  Model m;
  char buf[32];
  for (int u = 0; u < o.users; ++u) {
    std::snprintf(buf, sizeof buf, "u-%06d", u);
    m.users.emplace_back(buf);
  }
  // Each organization draws its members from a window of the pool five times its share, so a
  // user belongs to a few teams of an organization and to a few organizations.
  const int window = std::min(o.users, std::max(1, 5 * o.users / o.orgs));
  for (int g = 0; g < o.orgs; ++g) {
    std::snprintf(buf, sizeof buf, "org-%04d", g);
    m.orgs.emplace_back(buf);
    m.org_users.push_back({static_cast<int>((static_cast<int64_t>(g) * o.users / o.orgs)), window});
    const int first = static_cast<int>(m.teams.size());
    for (int k = 0; k < o.teams_per_org; ++k) {
      Team t;
      t.org = g;
      t.name = "team-" + std::to_string(k);
      // A new root now and then; otherwise, often the previous team (so trees reach the depth
      // limit), else any earlier team with room below it.
      if (k > 0 && std::uniform_int_distribution<int>(0, 9)(rng) != 0) {
        const Team& prev = m.teams.back();
        if (prev.depth < o.max_depth && std::uniform_int_distribution<int>(0, 2)(rng) == 0) {
          t.parent = static_cast<int>(m.teams.size()) - 1;
        } else {
          std::vector<int> open;
          for (int i = first; i < static_cast<int>(m.teams.size()); ++i)
            if (m.teams[static_cast<size_t>(i)].depth < o.max_depth) open.push_back(i);
          if (!open.empty())
            t.parent = open[std::uniform_int_distribution<size_t>(0, open.size() - 1)(rng)];
        }
      }
      if (t.parent >= 0) t.depth = m.teams[static_cast<size_t>(t.parent)].depth + 1;
      const int self = static_cast<int>(m.teams.size());
      for (int a = t.parent; a >= 0; a = m.teams[static_cast<size_t>(a)].parent)
        m.teams[static_cast<size_t>(a)].descendants.push_back(self);
      m.teams.push_back(std::move(t));
    }
    m.org_teams.push_back({first, static_cast<int>(m.teams.size())});
  }
  // Memberships spread evenly over teams, distinct users per team; roles 60% member, 30% admin,
  // 10% owner.
  m.org_memberships.resize(static_cast<size_t>(o.orgs));
  const size_t n_teams = m.teams.size();
  for (size_t t = 0; t < n_teams; ++t) {
    const int org = m.teams[t].org;
    const auto [base, width] = m.org_users[static_cast<size_t>(org)];
    const size_t count = o.memberships / n_teams + (t < o.memberships % n_teams ? 1 : 0);
    std::set<int> chosen;
    while (chosen.size() < std::min(count, static_cast<size_t>(width)))
      chosen.insert((base + std::uniform_int_distribution<int>(0, width - 1)(rng)) % o.users);
    for (int u : chosen) {
      const int r = std::uniform_int_distribution<int>(0, 9)(rng);
      m.org_memberships[static_cast<size_t>(org)].push_back(static_cast<int>(m.memberships.size()));
      m.memberships.push_back({static_cast<int>(t), u, r < 6 ? kMember : r < 9 ? kAdmin : kOwner});
    }
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Load: organizations spread over `clients` threads, each with a keep-alive connection. One
// organization's commands go one at a time (a team's parent exists before it), so the
// concurrency is across organizations.

class Client {
 public:
  Client(int port, const std::string& key) : c_("127.0.0.1", port) {
    c_.set_bearer_token_auth(key.c_str());
    c_.set_keep_alive(true);
    c_.set_tcp_nodelay(true);
    c_.set_read_timeout(30, 0);
  }
  // A command, retried (with the same Idempotency-Key, so it applies once) while the server
  // is overloaded or the connection fails. Returns the final status and body.
  std::pair<int, json> Command(const std::string& method, const std::string& path, const json& body,
                               const std::string& idempotency_key) {
    httplib::Headers headers{{"Idempotency-Key", idempotency_key}};
    const std::string text = body.dump();
    for (int attempt = 0;; ++attempt) {
      auto r = method == "PUT" ? c_.Put(path.c_str(), headers, text, "application/json")
                               : c_.Post(path.c_str(), headers, text, "application/json");
      if (r && r->status != 503 && r->status != 504) {
        return {r->status, json::parse(r->body, nullptr, false)};
      }
      if (attempt == 20) return {r ? r->status : 0, json()};
      ++retries_;
      std::this_thread::sleep_for(std::chrono::milliseconds(100 * (attempt + 1)));
    }
  }
  httplib::Client& raw() { return c_; }
  uint64_t retries() const { return retries_; }

 private:
  httplib::Client c_;
  uint64_t retries_ = 0;
};

struct LoadStats {
  uint64_t ok = 0, failed = 0, retries = 0;
  double seconds = 0;
  double Rate() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
};

void SetPlans(const Options& o, Model& m, int port, const std::string& key) {
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < std::min(o.clients, 16); ++i) {
    threads.emplace_back([&] {
      Client c(port, key);
      for (int g; (g = next.fetch_add(1)) < o.orgs;) {
        const std::string& org = m.orgs[static_cast<size_t>(g)];
        auto [status, body] = c.Command("PUT", "/v1/usage/orgs/" + org + "/plan",
                                        {{"plan", "enterprise"}}, "bench-plan-" + org);
        if (status / 100 != 2) Die("setting the plan of " + org + ": " + std::to_string(status));
      }
    });
  }
  for (auto& t : threads) t.join();
}

LoadStats Load(const Options& o, Model& m, int port, const std::string& key) {
  std::atomic<int> next{0};
  std::atomic<uint64_t> ok{0}, failed{0}, retries{0}, reported{0};
  std::mutex first_errors_mu;
  int first_errors = 0;
  auto fail = [&](const std::string& what, int status, const json& body) {
    failed.fetch_add(1);
    std::lock_guard<std::mutex> lock(first_errors_mu);
    if (first_errors++ < 10)
      Say("bench: %s: %d %s\n", what.c_str(), status, body.dump().substr(0, 300).c_str());
  };
  const uint64_t total = m.teams.size() + m.memberships.size();
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < o.clients; ++i) {
    threads.emplace_back([&] {
      Client c(port, key);
      for (int g; (g = next.fetch_add(1)) < o.orgs;) {
        const std::string& org = m.orgs[static_cast<size_t>(g)];
        const auto [first, end] = m.org_teams[static_cast<size_t>(g)];
        for (int t = first; t < end; ++t) {
          Team& team = m.teams[static_cast<size_t>(t)];
          json body = {{"organizationId", org},
                       {"name", team.name},
                       {"visibility", "private"},
                       {"actorUserId", Creator(org)}};
          if (team.parent >= 0) {
            const Team& parent = m.teams[static_cast<size_t>(team.parent)];
            if (!parent.created) {
              fail("team " + org + "/" + team.name + " skipped: its parent failed", 0, json());
              continue;
            }
            body["parentTeamId"] = parent.id;
          }
          auto [status, answer] =
              c.Command("POST", "/v1/teams", body, "bench-team-" + org + "-" + team.name);
          if (status == 201 && answer.is_object() && answer.contains("id")) {
            team.id = answer["id"].get<std::string>();
            team.created = true;
            ok.fetch_add(1);
          } else {
            fail("createTeam " + org + "/" + team.name, status, answer);
          }
        }
        for (int mi : m.org_memberships[static_cast<size_t>(g)]) {
          Membership& ms = m.memberships[static_cast<size_t>(mi)];
          const Team& team = m.teams[static_cast<size_t>(ms.team)];
          if (!team.created) {
            failed.fetch_add(1);
            continue;
          }
          const std::string& user = m.users[static_cast<size_t>(ms.user)];
          auto [status, answer] = c.Command(
              "POST", "/v1/teams/" + team.id + "/members",
              {{"userId", user}, {"role", RoleName(ms.role)}, {"actorUserId", Creator(org)}},
              "bench-member-" + team.id + "-" + user);
          if (status == 201) {
            ms.applied = true;
            ok.fetch_add(1);
          } else {
            fail("addMember " + team.id + " " + user, status, answer);
          }
        }
        const uint64_t done = ok.load() + failed.load();
        // Progress about every 5%.
        const uint64_t step = std::max<uint64_t>(1, total / 20);
        uint64_t seen = reported.load();
        if (done / step > seen && reported.compare_exchange_strong(seen, done / step)) {
          const double s = Seconds(Clock::now() - start);
          Say("bench: load %llu/%llu commands, %.0f s, %.0f/s\n",
              static_cast<unsigned long long>(done), static_cast<unsigned long long>(total), s,
              static_cast<double>(ok.load()) / s);
        }
      }
      retries.fetch_add(c.retries());
    });
  }
  for (auto& t : threads) t.join();
  LoadStats s;
  s.seconds = Seconds(Clock::now() - start);
  s.ok = ok.load();
  s.failed = failed.load();
  s.retries = retries.load();
  for (const auto& ms : m.memberships)
    if (ms.applied) m.direct[{ms.team, ms.user}] = ms.role;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Queries: (team, user) pairs, half allowed through inheritance by construction.

struct Query {
  int team = 0;
  int user = 0;
  int expected = 0;  // the highest role on the path, from the applied memberships
};

std::vector<Query> MakeQueries(const Options& o, const Model& m, std::mt19937_64& rng) {
  // Memberships that grant members.manage below their team: admin or owner with subteams.
  std::vector<int> granting, all;
  for (size_t i = 0; i < m.memberships.size(); ++i) {
    const Membership& ms = m.memberships[i];
    if (!ms.applied) continue;
    all.push_back(static_cast<int>(i));
    if (ms.role >= kAdmin && !m.teams[static_cast<size_t>(ms.team)].descendants.empty())
      granting.push_back(static_cast<int>(i));
  }
  if (all.empty()) Die("no membership was applied");
  std::vector<int> created;
  for (size_t t = 0; t < m.teams.size(); ++t)
    if (m.teams[t].created) created.push_back(static_cast<int>(t));
  auto pick = [&](const std::vector<int>& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  std::vector<Query> out;
  for (int i = 0; i < o.queries; ++i) {
    Query q;
    const int kind = std::uniform_int_distribution<int>(0, 3)(rng);
    if (kind < 2 && !granting.empty()) {
      // Inherited: a team strictly below an admin's or owner's team.
      const Membership& ms = m.memberships[static_cast<size_t>(pick(granting))];
      q.team = pick(m.teams[static_cast<size_t>(ms.team)].descendants);
      q.user = ms.user;
    } else if (kind == 2) {
      // Direct: a member in its own team.
      const Membership& ms = m.memberships[static_cast<size_t>(pick(all))];
      q.team = ms.team;
      q.user = ms.user;
    } else {
      // Anyone of the organization's window in any of its teams: mostly not allowed.
      q.team = pick(created);
      const auto [base, width] =
          m.org_users[static_cast<size_t>(m.teams[static_cast<size_t>(q.team)].org)];
      q.user = (base + std::uniform_int_distribution<int>(0, width - 1)(rng)) % o.users;
    }
    if (!m.teams[static_cast<size_t>(q.team)].created) {
      --i;
      continue;
    }
    q.expected = m.Expected(q.team, q.user);
    out.push_back(q);
  }
  return out;
}

struct QueryRun {
  Latency check, effective, cte, health;
  double check_mean = 0, effective_mean = 0, cte_mean = 0;
  double allowed_share = 0, inherited_share = 0;
  uint64_t mismatches = 0;
};

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

// The README's second CTE: the highest role the user holds on the team's path from its root.
constexpr const char* kCheckCte = R"(WITH RECURSIVE up AS (
  SELECT team_id, parent_team_id FROM teams_teams WHERE organization_id = $1 AND team_id = $2
  UNION ALL
  SELECT t.team_id, t.parent_team_id FROM teams_teams t
    JOIN up ON t.organization_id = $1 AND t.team_id = up.parent_team_id)
SELECT max(CASE m.role WHEN 'owner' THEN 3 WHEN 'admin' THEN 2 ELSE 1 END)
  FROM up JOIN teams_memberships m ON m.organization_id = $1 AND m.team_id = up.team_id
 WHERE m.user_id = $3)";

QueryRun RunQueries(const Model& m, const std::vector<Query>& queries, int port,
                    const std::string& key, pqxx::connection& pg) {
  QueryRun run;
  Client c(port, key);
  // /health on the same server, for the floor of a request through the HTTP stack (no key,
  // no store).
  httplib::Client health("127.0.0.1", port);
  health.set_keep_alive(true);
  health.set_tcp_nodelay(true);
  std::vector<double> check_ms, effective_ms, cte_ms, health_ms;
  uint64_t allowed = 0, inherited = 0;
  auto report = [&](const std::string& what) {
    if (++run.mismatches <= 10) Say("bench: MISMATCH %s\n", what.c_str());
  };
  pqxx::nontransaction tx(pg);
  // Untimed first: the connections, the server's caches and Postgres' plan settle.
  for (size_t i = 0; i < std::min<size_t>(1000, queries.size()); ++i) {
    const Query& q = queries[i];
    const Team& team = m.teams[static_cast<size_t>(q.team)];
    const std::string& user = m.users[static_cast<size_t>(q.user)];
    c.raw().Get(
        ("/v1/teams/" + team.id + "/permissions/" + user + "/check?permission=members.manage")
            .c_str());
    tx.exec_prepared("team_check", m.orgs[static_cast<size_t>(team.org)], team.id, user);
  }
  for (const Query& q : queries) {
    const Team& team = m.teams[static_cast<size_t>(q.team)];
    const std::string& user = m.users[static_cast<size_t>(q.user)];
    const std::string base = "/v1/teams/" + team.id + "/permissions/" + user;
    auto start = Clock::now();
    auto r = c.raw().Get((base + "/check?permission=members.manage").c_str());
    check_ms.push_back(Seconds(Clock::now() - start) * 1000);
    if (!r || r->status != 200) Die("checkPermission failed: " + base);
    json j = json::parse(r->body, nullptr, false);
    const bool ok = j.value("allowed", false);
    if (ok) ++allowed;
    if (ok && j.contains("grantedBy") && j["grantedBy"].value("inherited", false)) ++inherited;
    if (ok != (q.expected >= kAdmin))
      report("check " + team.id + " " + user + ": HTTP " + (ok ? "allowed" : "denied") +
             ", the applied memberships say " + std::to_string(q.expected));

    start = Clock::now();
    r = c.raw().Get(base.c_str());
    effective_ms.push_back(Seconds(Clock::now() - start) * 1000);
    if (!r || r->status != 200) Die("getEffectivePermissions failed: " + base);
    j = json::parse(r->body, nullptr, false);
    const std::string role =
        j.contains("role") && j["role"].is_string() ? j["role"].get<std::string>() : "";
    const std::string want = q.expected ? RoleName(q.expected) : "";
    start = Clock::now();
    r = health.Get("/health");
    health_ms.push_back(Seconds(Clock::now() - start) * 1000);
    if (!r || r->status != 200) Die("/health failed");
    if (role != want)
      report("effective " + team.id + " " + user + ": role '" + role + "', expected '" + want +
             "'");

    // The same check answered by Postgres right after, one prepared statement on one
    // connection, so that both see the machine in the same state: run one starts while the
    // load's compactions and snapshots still settle, and timed after all the HTTP checks the
    // CTE missed that.
    start = Clock::now();
    pqxx::result res =
        tx.exec_prepared("team_check", m.orgs[static_cast<size_t>(team.org)], team.id, user);
    cte_ms.push_back(Seconds(Clock::now() - start) * 1000);
    const int cte_role = res[0][0].is_null() ? 0 : res[0][0].as<int>();
    if ((cte_role >= kAdmin) != ok)
      report("CTE " + team.id + " " + user + ": role " + std::to_string(cte_role) + ", HTTP said " +
             (ok ? "allowed" : "denied"));
  }
  run.check_mean = Mean(check_ms);
  run.effective_mean = Mean(effective_ms);
  run.cte_mean = Mean(cte_ms);
  run.check = Percentiles(std::move(check_ms));
  run.effective = Percentiles(std::move(effective_ms));
  run.cte = Percentiles(std::move(cte_ms));
  run.health = Percentiles(std::move(health_ms));
  run.allowed_share = static_cast<double>(allowed) / static_cast<double>(queries.size());
  run.inherited_share = static_cast<double>(inherited) / static_cast<double>(queries.size());
  return run;
}

int64_t Count(pqxx::connection& pg, const std::string& table) {
  pqxx::nontransaction tx(pg);
  return tx.exec("SELECT count(*) FROM " + table)[0][0].as<int64_t>();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{
      "Teams at size: commands/s, checkPermission and getEffectivePermissions over "
      "HTTP against a recursive CTE in Postgres"};
  app.add_option("--cmstream", o.cmstream, "the cmstream binary")->capture_default_str();
  app.add_option("--database-url", o.database_url, "Postgres (ops/services start)")
      ->envname("DATABASE_URL")
      ->capture_default_str();
  app.add_option("--orgs", o.orgs, "organizations")->capture_default_str();
  app.add_option("--teams-per-org", o.teams_per_org, "teams per organization")
      ->capture_default_str();
  app.add_option("--max-depth", o.max_depth, "levels of a team tree (a root is 1)")
      ->capture_default_str();
  app.add_option("--memberships", o.memberships, "memberships added")->capture_default_str();
  app.add_option("--users", o.users, "the user pool")->capture_default_str();
  app.add_option("--clients", o.clients, "concurrent HTTP clients of the load")
      ->capture_default_str();
  app.add_option("--queries", o.queries, "checks (and as many effective permissions) per run")
      ->capture_default_str();
  app.add_option("--runs", o.runs, "query runs (medians are printed)")->capture_default_str();
  app.add_option("--seed", o.seed, "random seed")->capture_default_str();
  app.add_option("--snapshot-interval", o.snapshot_interval, "cmstream --snapshot-interval")
      ->capture_default_str();
  app.add_flag("--keep", o.keep, "keep the Postgres schema and the state directory");
  CLI11_PARSE(app, argc, argv);
  if (o.orgs < 1 || o.teams_per_org < 1 || o.max_depth < 1 || o.users < 1 || o.clients < 1 ||
      o.queries < 1 || o.runs < 1 || o.memberships < 0)
    Die("every count must be positive");
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }

  Model m = Generate(o);
  std::vector<int> per_depth(static_cast<size_t>(o.max_depth) + 1, 0);
  for (const auto& t : m.teams) ++per_depth[static_cast<size_t>(t.depth)];
  std::string depths;
  for (int d = 1; d <= o.max_depth; ++d)
    depths += (d > 1 ? " " : "") + std::to_string(per_depth[static_cast<size_t>(d)]);
  std::printf(
      "%d organizations, %zu teams (per level 1..%d: %s), %zu memberships over %d users, "
      "%d clients; %d checks and %d effective permissions per run\n",
      o.orgs, m.teams.size(), o.max_depth, depths.c_str(), m.memberships.size(), o.users, o.clients,
      o.queries, o.queries);
  std::fflush(stdout);

  const auto dir =
      std::filesystem::temp_directory_path() / ("cm-bench-teams-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string schema = "bench_teams_" + std::to_string(::getpid());
  const std::string log = (dir / "cmstream.log").string();
  Say("bench: migrating schema %s; cmstream log %s\n", schema.c_str(), log.c_str());
  RunOrDie({o.cmstream, "migrate", "--database-url", o.database_url, "--database-schema", schema},
           log);

  int status = 0;
  {
    Instance instance(o, dir, schema);
    if (o.teams_per_org > 50) {
      // The free plan allows 50 teams per organization.
      Say("bench: putting %d organizations on the enterprise plan\n", o.orgs);
      SetPlans(o, m, instance.port(), instance.key());
    }
    Say("bench: loading %zu teams and %zu memberships\n", m.teams.size(), m.memberships.size());
    LoadStats load = Load(o, m, instance.port(), instance.key());
    size_t teams_created = 0, members_applied = 0;
    for (const auto& t : m.teams) teams_created += t.created;
    for (const auto& ms : m.memberships) members_applied += ms.applied;
    std::printf(
        "load: %llu commands applied in %.1f s = %.0f commands/s (%zu teams, %zu "
        "memberships), %llu failed, %llu retried after 503 or a connection error\n",
        static_cast<unsigned long long>(load.ok), load.seconds, load.Rate(), teams_created,
        members_applied, static_cast<unsigned long long>(load.failed),
        static_cast<unsigned long long>(load.retries));
    std::fflush(stdout);
    if (load.failed > 0) status = 1;

    // The snapshot holds every team and every membership, the creators' owner ones included.
    pqxx::connection pg(o.database_url);
    {
      pqxx::nontransaction tx(pg);
      tx.exec("SET search_path TO " + tx.quote_name(schema));
    }
    pg.prepare("team_check", kCheckCte);
    const int64_t want_teams = static_cast<int64_t>(teams_created);
    const int64_t want_members = static_cast<int64_t>(teams_created + members_applied);
    auto wait_start = Clock::now();
    for (;;) {
      const int64_t teams = Count(pg, "teams_teams");
      const int64_t members = Count(pg, "teams_memberships");
      if (teams == want_teams && members == want_members) break;
      if (Clock::now() - wait_start > std::chrono::minutes(5))
        Die("the snapshot holds " + std::to_string(teams) + " teams and " +
            std::to_string(members) + " memberships, not " + std::to_string(want_teams) + " and " +
            std::to_string(want_members) + ", after 5 minutes; see " + log);
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    Say("bench: the snapshot held every team and membership %.1f s after the load\n",
        Seconds(Clock::now() - wait_start));
    {
      pqxx::nontransaction tx(pg);
      tx.exec("ANALYZE teams_teams");
      tx.exec("ANALYZE teams_memberships");
    }

    Table table({{"commands/s", "%.0f"},
                 {"check p50 ms", "%.3f"},
                 {"check p99 ms", "%.3f"},
                 {"check mean ms", "%.3f"},
                 {"effective p50 ms", "%.3f"},
                 {"effective p99 ms", "%.3f"},
                 {"CTE p50 ms", "%.3f"},
                 {"CTE p99 ms", "%.3f"},
                 {"CTE p99 / check p99", "%.2f"},
                 {"/health p50 ms", "%.3f"},
                 {"/health p99 ms", "%.3f"},
                 {"allowed", "%.2f"},
                 {"inherited", "%.2f"}});
    std::mt19937_64 rng(o.seed + 1);
    uint64_t mismatches = 0;
    for (int run = 1; run <= o.runs; ++run) {
      std::vector<Query> queries = MakeQueries(o, m, rng);
      Say("bench: query run %d\n", run);
      QueryRun r = RunQueries(m, queries, instance.port(), instance.key(), pg);
      mismatches += r.mismatches;
      table.Add("run " + std::to_string(run),
                {load.Rate(), r.check.p50_ms, r.check.p99_ms, r.check_mean, r.effective.p50_ms,
                 r.effective.p99_ms, r.cte.p50_ms, r.cte.p99_ms,
                 r.check.p99_ms > 0 ? r.cte.p99_ms / r.check.p99_ms : 0, r.health.p50_ms,
                 r.health.p99_ms, r.allowed_share, r.inherited_share});
    }
    table.AddMedian();
    table.Print(stdout);
    std::printf(
        "commands/s is the one load phase's; /health is the same server's floor (no key, no "
        "store); "
        "allowed and inherited are the shares of "
        "checks answered allowed, and allowed by a role held in an ancestor team\n");
    std::printf(
        "check: %s (HTTP checks and effective roles against the applied memberships, "
        "CTE answers against HTTP, %d x %d queries)\n",
        mismatches == 0 ? "ok" : "MISMATCHES", o.runs, o.queries);
    std::printf("goal: checkPermission p99 < 1 ms, and under the CTE's\n");
    if (mismatches > 0) status = 1;
  }
  if (!o.keep) {
    pqxx::connection pg(o.database_url);
    pqxx::nontransaction tx(pg);
    tx.exec("DROP SCHEMA " + tx.quote_name(schema) + " CASCADE");
    std::filesystem::remove_all(dir);
  }
  return status;
}
