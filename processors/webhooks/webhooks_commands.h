#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "processors/webhooks/webhooks_options.h"
#include "topology/processor/command_results.h"

namespace cm::webhooks {

// Webhooks commands on cloudmatrix.commands, keyed by organizationId: a JSON object {"type",
// "commandId", "requestHash", "issuedAt", "organizationId", ...}; other types are ignored.
// Secrets are drawn at the HTTP edge (processing stays a function of the log).
//
//   webhooks.register        {webhookId, url, events, description?, headers?, createdBy,
//                             secret}
//   webhooks.update          {webhookId, url?, events?, active?, description?, headers?,
//                             newSecret?}  (newSecret: rotateSecret was asked)
//   webhooks.delete          {webhookId}
//   webhooks.enqueue_event   {event: {eventId, eventType, data?, occurredAt?}}
//   webhooks.retry_delivery  {deliveryId}
//   webhooks.send_test       {webhookId, eventId}
//   webhooks.reset_circuit   {webhookId}
//
// The outcome goes to webhooks-command-results (topology::CommandResults); a command whose id
// has a result is not applied again, and a refused command changes nothing else.
inline constexpr char kRegister[] = "webhooks.register";
inline constexpr char kUpdate[] = "webhooks.update";
inline constexpr char kDelete[] = "webhooks.delete";
inline constexpr char kEnqueueEvent[] = "webhooks.enqueue_event";
inline constexpr char kRetryDelivery[] = "webhooks.retry_delivery";
inline constexpr char kSendTest[] = "webhooks.send_test";
inline constexpr char kResetCircuit[] = "webhooks.reset_circuit";

using topology::ErrorBody;

// The checks that need no state, for the routes (before appending) and the processor
// (commands may come from elsewhere): nullopt when valid, else a 400 body naming the field.
std::optional<nlohmann::json> CheckCommandFields(std::string_view type,
                                                 const nlohmann::json& command,
                                                 const WebhooksOptions& options);

// The checks of single fields, shared by the routes' messages.
std::optional<std::string> CheckUrl(const nlohmann::json& url, const WebhooksOptions& options);
std::optional<std::string> CheckHeaders(const nlohmann::json& headers,
                                        const WebhooksOptions& options);

}  // namespace cm::webhooks
