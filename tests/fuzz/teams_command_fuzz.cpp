// The teams application's command parser and rules as the engine runs them: each input is one
// record on cloudmatrix.commands, processed by the real TeamsProcessor (and the user index
// behind its repartition topic) over real RocksDB stores (TopologyTestDriver), on top of a
// seeded tree of teams (root "seed-root" > "seed-mid" > "seed-leaf" in org-1, owner alice,
// bob admin in the middle).
// Invariants: nothing throws out of the processors; a teams.* command with a valid commandId
// always ends with a stored result; the organization's materialized grants equal a naive
// recomputation after every input; every DLQ record says why.
#include <memory>
#include <stdexcept>

#include "fuzz_check.h"
#include "processors/teams/team_graph.h"
#include "processors/teams/team_id.h"
#include "processors/teams/teams_options.h"
#include "processors/teams/teams_stores.h"
#include "processors/teams/teams_topology.h"
#include "topology/common/json.h"
#include "topology/processor/command_results.h"
#include "topology/testing/topology_test_driver.h"

namespace {

constexpr char kCommands[] = "cloudmatrix.commands";
constexpr char kDlq[] = "cloudmatrix.dlq";
constexpr int64_t kNow = 1'714'564'800'000;  // 2024-05-01T12:00:00Z

// One driver for the whole run (libFuzzer calls the target once per input); state carries
// over between inputs, as it does in production.
struct Harness {
  cm::teams::TeamsOptions options;
  std::unique_ptr<cm::topology::Topology> topology;
  std::unique_ptr<cm::topology::TopologyTestDriver> driver;
  int64_t now = kNow;

  void Send(nlohmann::json command) {
    command["organizationId"] = "org-1";
    driver->PipeInput(kCommands, "org-1", command.dump(), now += 1000);
  }

  Harness() {
    options.own_source = true;
    cm::topology::TopologyBuilder b;
    if (!cm::teams::AddTeamsTopology(b, options).ok()) throw std::runtime_error("topology");
    auto built = b.Build("teams-fuzz");
    if (!built.ok()) throw std::runtime_error(built.status().ToString());
    topology = std::make_unique<cm::topology::Topology>(std::move(built).value());
    cm::topology::TestDriverOptions o;
    o.partitions = 1;
    auto d = cm::topology::TopologyTestDriver::Create(*topology, o);
    if (!d.ok()) throw std::runtime_error(d.status().ToString());
    driver = std::move(d).value();
    const std::string root = cm::teams::TeamIdFor("org-1", "seed-root");
    const std::string mid = cm::teams::TeamIdFor("org-1", "seed-mid");
    Send({{"type", "teams.create_team"},
          {"commandId", "seed-root"},
          {"actorUserId", "alice"},
          {"name", "Root"}});
    Send({{"type", "teams.create_team"},
          {"commandId", "seed-mid"},
          {"actorUserId", "alice"},
          {"name", "Mid"},
          {"parentTeamId", root}});
    Send({{"type", "teams.create_team"},
          {"commandId", "seed-leaf"},
          {"actorUserId", "alice"},
          {"name", "Leaf"},
          {"parentTeamId", mid}});
    Send({{"type", "teams.add_member"},
          {"commandId", "seed-bob"},
          {"actorUserId", "alice"},
          {"teamId", mid},
          {"userId", "bob"},
          {"role", "admin"}});
    driver->Commit();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness h;  // see Harness
  const std::string value(cm::fuzz::Bytes(data, size));
  // Keyed as the HTTP layer keys them: by the organizationId the record names.
  std::string key = "org-1";
  auto parsed = cm::topology::ParseJson(value, static_cast<int>(h.options.max_json_depth));
  if (parsed.ok() && parsed->is_object() && parsed->contains("organizationId") &&
      (*parsed)["organizationId"].is_string())
    key = (*parsed)["organizationId"].get<std::string>();

  h.driver->PipeInput(kCommands, key, value, h.now += 1000);
  h.driver->Commit();
  for (const auto& r : h.driver->ReadOutput(kDlq)) {
    bool has_reason = false;
    for (const auto& header : r.headers)
      has_reason |= header.key == "dlq-reason" && !header.value.empty();
    FUZZ_CHECK(has_reason, "a DLQ record without a reason");
  }
  h.driver->ReadOutput("cloudmatrix.team-events");

  auto views = cm::teams::TeamsStoreViews::Live(h.driver->TaskFor(kCommands, key).state());
  cm::teams::TeamGraph graph(views);
  for (const auto& team : graph.TeamsOf(key)) {
    FUZZ_CHECK(
        graph.MaterializedGrantsOf(key, team) == graph.NaiveGrantsOf(key, team),
        "materialized grants differ from the naive recomputation in " + team + " after " + value);
  }
  if (!parsed.ok() || !parsed->is_object()) return 0;
  const auto& cmd = *parsed;
  auto type = cmd.find("type");
  auto id = cmd.find("commandId");
  if (type == cmd.end() || !type->is_string() ||
      type->get_ref<const std::string&>().rfind("teams.", 0) != 0 || id == cmd.end() ||
      !id->is_string() || id->get_ref<const std::string&>().empty() ||
      id->get_ref<const std::string&>().size() > 256)
    return 0;
  auto result = cm::topology::CommandResults::Read(*views.command_results, id->get<std::string>());
  FUZZ_CHECK(result.has_value(), "a teams command with a commandId left no result");
  FUZZ_CHECK(result->contains("status") && (*result)["status"].is_number_integer(), result->dump());
  return 0;
}
