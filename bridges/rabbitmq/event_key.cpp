#include "bridges/rabbitmq/event_key.h"

#include <nlohmann/json.hpp>

#include "topology/common/json.h"

namespace cm::rabbitmq {

using nlohmann::json;
using state::Status;

namespace {

// A present organizationId must be a non-empty string; nullptr when absent.
state::Result<const std::string*> OrganizationField(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return static_cast<const std::string*>(nullptr);
  if (!it->is_string() || it->get_ref<const std::string&>().empty()) {
    return Status::InvalidArgument(std::string(name) + " must be a non-empty string");
  }
  return &it->get_ref<const std::string&>();
}

}  // namespace

state::Result<std::string> ExtractOrganizationId(std::string_view body) {
  auto parsed = topology::ParseJson(body);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (!j.is_object()) return Status::InvalidArgument("not a JSON object");
  auto top = OrganizationField(j, "organizationId");
  if (!top.ok()) return top.status();
  if (*top != nullptr) return **top;
  if (j.contains("specversion")) {
    auto data = j.find("data");
    if (data != j.end() && data->is_object()) {
      auto in_data = OrganizationField(*data, "organizationId");
      if (!in_data.ok()) return in_data.status();
      if (*in_data != nullptr) return **in_data;
    }
    auto extension = OrganizationField(j, "organizationid");
    if (!extension.ok()) return extension.status();
    if (*extension != nullptr) return **extension;
  }
  return Status::InvalidArgument("no organizationId");
}

}  // namespace cm::rabbitmq
