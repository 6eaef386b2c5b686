#include "processors/usage/usage_topology.h"

#include <memory>

#include "processors/usage/usage_processor.h"
#include "processors/usage/usage_stores.h"

namespace cm::usage {

state::Status AddUsageTopology(topology::TopologyBuilder& builder, const UsageOptions& options) {
  if (auto s = options.Validate(); !s.ok()) return s;
  auto shared = std::make_shared<const UsageOptions>(options);
  // Queries find an organization's figures in the task its key maps to.
  builder
      .AddSource(kUsageSourceNode, {options.events_topic, options.commands_topic},
                 topology::SourcePartitioning::kByKey)
      .AddProcessor(kUsageProcessorNode,
                    [shared] { return std::make_unique<UsageProcessor>(shared); },
                    {kUsageSourceNode})
      .AddSink(kQuotaAlertsSinkNode, options.quota_alerts_topic, {kUsageProcessorNode});
  for (auto& spec : UsageStoreSpecs()) builder.AddStateStore(spec, {kUsageProcessorNode});
  return state::Status::OK();
}

}  // namespace cm::usage
