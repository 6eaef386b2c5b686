#include "processors/webhooks/webhooks_topology.h"

#include <memory>

#include "processors/webhooks/webhooks_processor.h"
#include "processors/webhooks/webhooks_stores.h"

namespace cm::webhooks {

state::Status AddWebhooksTopology(topology::TopologyBuilder& builder,
                                  const WebhooksOptions& options) {
  if (auto s = options.Validate(); !s.ok()) return s;
  auto shared = std::make_shared<const WebhooksOptions>(options);
  if (options.own_source)
    builder.AddSource(options.source_node, {options.events_topic, options.commands_topic},
                      topology::SourcePartitioning::kByKey);
  builder
      .AddSource(kWebhooksSourceNode,
                 {options.team_events_topic, options.quota_alerts_topic, options.attempts_topic},
                 topology::SourcePartitioning::kByKey)
      .AddProcessor(kWebhooksProcessorNode,
                    [shared] { return std::make_unique<WebhooksProcessor>(shared); },
                    {options.source_node, kWebhooksSourceNode});
  for (auto& spec : WebhooksStoreSpecs()) builder.AddStateStore(spec, {kWebhooksProcessorNode});
  return state::Status::OK();
}

}  // namespace cm::webhooks
