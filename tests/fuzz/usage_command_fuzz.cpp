// The usage application's command parser (and its event path) as the engine runs it: each
// input is one record on cloudmatrix.commands (first byte even) or cloudmatrix.events (odd),
// processed by the real UsageProcessor over real RocksDB stores (TopologyTestDriver).
// Invariants: nothing throws out of the processor; a usage.* command with a valid commandId
// always ends with a stored result (an answer for the HTTP layer), any other record that is
// not another application's command goes to the DLQ with a reason or is applied.
#include <memory>
#include <stdexcept>

#include "fuzz_check.h"
#include "processors/usage/usage_commands.h"
#include "processors/usage/usage_options.h"
#include "processors/usage/usage_queries.h"
#include "processors/usage/usage_topology.h"
#include "topology/common/json.h"
#include "topology/testing/topology_test_driver.h"

namespace {

constexpr char kEvents[] = "cloudmatrix.events";
constexpr char kCommands[] = "cloudmatrix.commands";
constexpr char kDlq[] = "cloudmatrix.dlq";
constexpr int64_t kNow = 1'714'564'800'000;  // 2024-05-01T12:00:00Z

// One driver for the whole run (libFuzzer calls the target once per input): opening RocksDB
// per input would make the run a hundred times slower. State carries over between inputs,
// as it does in production.
struct Harness {
  cm::usage::UsageOptions options;
  std::unique_ptr<cm::topology::Topology> topology;
  std::unique_ptr<cm::topology::TopologyTestDriver> driver;

  Harness() {
    cm::topology::TopologyBuilder b;
    if (!cm::usage::AddUsageTopology(b, options).ok()) throw std::runtime_error("topology");
    auto built = b.Build("usage-fuzz");
    if (!built.ok()) throw std::runtime_error(built.status().ToString());
    topology = std::make_unique<cm::topology::Topology>(std::move(built).value());
    cm::topology::TestDriverOptions o;
    o.partitions = 1;
    auto d = cm::topology::TopologyTestDriver::Create(*topology, o);
    if (!d.ok()) throw std::runtime_error(d.status().ToString());
    driver = std::move(d).value();
    // Some usage, so that alert subscriptions and rollups have figures to work on.
    for (int i = 0; i < 3; ++i) {
      nlohmann::json e = {{"eventId", "seed-" + std::to_string(i)},
                          {"organizationId", "org-1"},
                          {"eventType", "api.call"},
                          {"timestamp", kNow - 3'600'000 * i}};
      driver->PipeInput(kEvents, "org-1", e.dump(), kNow);
    }
    driver->Commit();
    driver->ReadOutput(kDlq);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness h;  // see Harness
  if (size == 0) return 0;
  const bool command = (data[0] & 1) == 0;
  const std::string value(cm::fuzz::Bytes(data + 1, size - 1));
  // Keyed as the HTTP layer keys them: by the organizationId the record names.
  std::string key = "org-1";
  const cm::usage::UsageLimits& limits = h.options.limits;
  auto parsed = cm::topology::ParseJson(value, limits.max_json_depth);
  if (parsed.ok() && parsed->is_object() && parsed->contains("organizationId") &&
      (*parsed)["organizationId"].is_string())
    key = (*parsed)["organizationId"].get<std::string>();

  h.driver->PipeInput(command ? kCommands : kEvents, key, value, kNow);
  h.driver->Commit();
  for (const auto& r : h.driver->ReadOutput(kDlq)) {
    bool has_reason = false;
    for (const auto& header : r.headers)
      has_reason |= header.key == "dlq-reason" && !header.value.empty();
    FUZZ_CHECK(has_reason, "a DLQ record without a reason");
  }
  h.driver->ReadOutput("cloudmatrix.quota-alerts");
  if (!command || !parsed.ok() || !parsed->is_object()) return 0;
  const auto& cmd = *parsed;
  auto type = cmd.find("type");
  auto id = cmd.find("commandId");
  if (type == cmd.end() || !type->is_string() ||
      type->get_ref<const std::string&>().rfind("usage.", 0) != 0 || id == cmd.end() ||
      !id->is_string() || id->get_ref<const std::string&>().empty() ||
      id->get_ref<const std::string&>().size() > limits.max_id_bytes)
    return 0;
  auto views = cm::usage::UsageStoreViews::Live(h.driver->TaskFor(kCommands, key).state());
  auto result = cm::topology::CommandResults::Read(*views.command_results, id->get<std::string>());
  FUZZ_CHECK(result.has_value(), "a usage command with a commandId left no result");
  FUZZ_CHECK(result->contains("status") && (*result)["status"].is_number_integer(), result->dump());
  return 0;
}
