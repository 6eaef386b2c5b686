#include "topology/common/entity_id.h"

#include "topology/common/crypto.h"

namespace cm::topology {

std::string EntityIdFor(std::string_view organization, char tag, std::string_view seed) {
  return std::string(organization) + '~' + tag + HexEncode(Sha256(seed)).substr(0, 16);
}

std::optional<std::string> OrganizationOfEntityId(std::string_view id, char tag) {
  const size_t tilde = id.rfind('~');
  if (tilde == std::string_view::npos || tilde == 0) return std::nullopt;
  std::string_view tail = id.substr(tilde + 1);
  if (tail.size() != 17 || tail[0] != tag) return std::nullopt;
  for (char c : tail.substr(1)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return std::string(id.substr(0, tilde));
}

state::Status CheckId(std::string_view id, size_t max_bytes, std::string_view field) {
  const std::string name(field);
  if (id.empty()) return state::Status::InvalidArgument(name + " must not be empty");
  if (id.size() > max_bytes)
    return state::Status::InvalidArgument(name + " must be at most " + std::to_string(max_bytes) +
                                          " bytes");
  for (unsigned char c : id) {
    if (c == '/' || c <= 0x20 || c == 0x7f)
      return state::Status::InvalidArgument(name +
                                            " must not contain '/', spaces or control characters");
  }
  return state::Status::OK();
}

}  // namespace cm::topology
