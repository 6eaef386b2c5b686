#include "processors/webhooks/webhooks_commands.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <string>

#include "processors/webhooks/event_catalog.h"
#include "topology/common/entity_id.h"

namespace cm::webhooks {

using nlohmann::json;

namespace {

// Headers cmstream sets itself, or that only mean something to one hop (RFC 9110 §7.6.1).
const std::set<std::string>& ReservedHeaders() {
  static const std::set<std::string> kReserved = {"connection",
                                                  "keep-alive",
                                                  "proxy-authenticate",
                                                  "proxy-authorization",
                                                  "proxy-connection",
                                                  "te",
                                                  "trailer",
                                                  "trailers",
                                                  "transfer-encoding",
                                                  "upgrade",
                                                  "host",
                                                  "content-length",
                                                  "content-type",
                                                  "expect",
                                                  "webhook-id",
                                                  "webhook-timestamp",
                                                  "webhook-signature"};
  return kReserved;
}

bool IsTokenChar(unsigned char c) {
  return std::isalnum(c) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

json Invalid(const std::string& field, const std::string& message) {
  return ErrorBody("validation_error", message, {{"field", field}});
}

std::optional<json> CheckIdField(const json& c, const char* field, const WebhooksOptions& o,
                                 size_t max_bytes = 0) {
  if (!c.contains(field) || !c[field].is_string())
    return Invalid(field, std::string(field) + " is required (a string)");
  if (auto s = topology::CheckId(c[field].get<std::string>(),
                                 max_bytes == 0 ? o.max_id_bytes : max_bytes, field);
      !s.ok())
    return Invalid(field, s.message());
  return std::nullopt;
}

std::optional<json> CheckOptionalString(const json& c, const char* field, size_t max_bytes) {
  if (!c.contains(field) || c[field].is_null()) return std::nullopt;
  if (!c[field].is_string()) return Invalid(field, std::string(field) + " must be a string");
  if (c[field].get_ref<const std::string&>().size() > max_bytes)
    return Invalid(field,
                   std::string(field) + " must be at most " + std::to_string(max_bytes) + " bytes");
  return std::nullopt;
}

std::optional<json> CheckEndpointFields(const json& c, const WebhooksOptions& o, bool required) {
  if (required || c.contains("url")) {
    if (auto m = CheckUrl(c.contains("url") ? c["url"] : json(), o)) return Invalid("url", *m);
  }
  if (required || c.contains("events")) {
    if (auto m = CheckSubscriptions(c.contains("events") ? c["events"] : json()))
      return Invalid("events", *m);
  }
  if (auto e = CheckOptionalString(c, "description", o.max_description_bytes)) return e;
  if (c.contains("headers") && !c["headers"].is_null()) {
    if (auto m = CheckHeaders(c["headers"], o)) return Invalid("headers", *m);
  }
  if (c.contains("active") && !c["active"].is_boolean())
    return Invalid("active", "active must be true or false");
  return std::nullopt;
}

std::optional<json> CheckSecretField(const json& c, const char* field) {
  if (!c.contains(field)) return std::nullopt;
  if (!c[field].is_string() || !c[field].get_ref<const std::string&>().starts_with("whsec_") ||
      c[field].get_ref<const std::string&>().size() > 200)
    return Invalid(field, std::string(field) + " must be a whsec_ secret");
  return std::nullopt;
}

}  // namespace

std::optional<std::string> CheckUrl(const json& url, const WebhooksOptions& o) {
  if (!url.is_string()) return "url is required (a string)";
  const std::string& u = url.get_ref<const std::string&>();
  if (u.size() > o.max_url_bytes)
    return "url must be at most " + std::to_string(o.max_url_bytes) + " bytes";
  for (unsigned char c : u) {
    if (c <= 0x20 || c >= 0x7f) return "url must not contain spaces, control or non-ASCII bytes";
  }
  std::string rest;
  if (u.starts_with("https://")) {
    rest = u.substr(8);
  } else if (u.starts_with("http://")) {
    if (!o.allow_http)
      return "url must be https:// (http:// only where the deployment allows it: "
             "--webhook-allow-http)";
    rest = u.substr(7);
  } else {
    return "url must be an https:// URL";
  }
  const std::string authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.empty()) return "url needs a host";
  if (authority.find('@') != std::string::npos) return "url must not carry credentials (user@)";
  if (u.find('#') != std::string::npos) return "url must not have a fragment";
  return std::nullopt;
}

std::optional<std::string> CheckHeaders(const json& headers, const WebhooksOptions& o) {
  if (!headers.is_object()) return "headers must be an object of header names to string values";
  if (headers.size() > o.max_headers)
    return "headers may hold at most " + std::to_string(o.max_headers) + " entries";
  std::set<std::string> seen;
  for (const auto& [name, value] : headers.items()) {
    if (name.empty() || name.size() > 256 || !std::all_of(name.begin(), name.end(), [](char c) {
          return IsTokenChar(static_cast<unsigned char>(c));
        }))
      return "header name '" + name.substr(0, 64) + "' is not a valid HTTP header name";
    const std::string lower = Lower(name);
    if (ReservedHeaders().count(lower) != 0)
      return "header '" + name + "' is set by cmstream or is hop-by-hop; it cannot be customized";
    if (!seen.insert(lower).second) return "header '" + name + "' is given twice";
    if (!value.is_string()) return "header '" + name + "' must have a string value";
    const auto& v = value.get_ref<const std::string&>();
    if (v.size() > o.max_header_bytes)
      return "header '" + name + "' is longer than " + std::to_string(o.max_header_bytes) +
             " bytes";
    if (v.find_first_of(std::string("\r\n\0", 3)) != std::string::npos)
      return "header '" + name + "' must not contain CR, LF or NUL";
  }
  return std::nullopt;
}

std::optional<json> CheckCommandFields(std::string_view type, const json& c,
                                       const WebhooksOptions& o) {
  if (type == kRegister) {
    if (auto e = CheckIdField(c, "webhookId", o, o.max_id_bytes + 32)) return e;
    if (auto e = CheckEndpointFields(c, o, true)) return e;
    if (auto e = CheckIdField(c, "createdBy", o)) return e;
    if (!c.contains("secret")) return Invalid("secret", "secret is required");
    return CheckSecretField(c, "secret");
  }
  if (type == kUpdate) {
    if (auto e = CheckIdField(c, "webhookId", o, o.max_id_bytes + 32)) return e;
    if (auto e = CheckEndpointFields(c, o, false)) return e;
    return CheckSecretField(c, "newSecret");
  }
  if (type == kDelete || type == kResetCircuit)
    return CheckIdField(c, "webhookId", o, o.max_id_bytes + 32);
  if (type == kSendTest) {
    if (auto e = CheckIdField(c, "webhookId", o, o.max_id_bytes + 32)) return e;
    return CheckIdField(c, "eventId", o, 256);
  }
  if (type == kRetryDelivery) return CheckIdField(c, "deliveryId", o, o.max_id_bytes + 32);
  if (type == kEnqueueEvent) {
    if (!c.contains("event") || !c["event"].is_object())
      return Invalid("event", "event is required (an object)");
    const json& e = c["event"];
    if (auto err = CheckIdField(e, "eventId", o, 256)) return err;
    if (!e.contains("eventType") || !e["eventType"].is_string() ||
        e["eventType"].get_ref<const std::string&>().empty() ||
        e["eventType"].get_ref<const std::string&>().size() > 128)
      return Invalid("eventType", "eventType is required (a string of 1..128 bytes)");
    if (e.contains("data") && !e["data"].is_null() && !e["data"].is_object())
      return Invalid("data", "data must be an object");
    if (e.contains("occurredAt") && !e["occurredAt"].is_null() && !e["occurredAt"].is_string() &&
        !e["occurredAt"].is_number_integer())
      return Invalid("occurredAt", "occurredAt must be an ISO-8601 time or epoch milliseconds");
    return std::nullopt;
  }
  return Invalid("type", "unknown webhooks command type '" + std::string(type) + "'");
}

}  // namespace cm::webhooks
