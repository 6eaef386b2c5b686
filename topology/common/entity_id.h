#pragma once

// Ids of application entities (teams, webhooks, deliveries) that carry their organization, so
// an HTTP route finds the owning task without a lookup:
//   <organizationId>~<tag><16 lowercase hex>
// The hex is the first 64 bits of SHA-256 over a seed (a command id, an event and endpoint), so
// the same input names the same entity. '~' is unreserved in URLs; the organization is what
// precedes the LAST '~' (an organization id may itself contain '~').
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "state/status.h"

namespace cm::topology {

std::string EntityIdFor(std::string_view organization, char tag, std::string_view seed);
// The organization of a well-formed id with that tag, else nullopt.
std::optional<std::string> OrganizationOfEntityId(std::string_view id, char tag);

// Organization, user and entity ids: 1..max bytes, no '/', no whitespace or control
// characters (they appear in paths). `field` names the field in the message.
state::Status CheckId(std::string_view id, size_t max_bytes, std::string_view field);

}  // namespace cm::topology
