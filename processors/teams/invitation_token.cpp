#include "processors/teams/invitation_token.h"

#include "topology/common/crypto.h"

namespace cm::teams {

std::string InvitationTokenPrefix(const std::string& organization) {
  return "cmi_" + topology::HexEncode(organization) + ".";
}

std::string DeriveInvitationToken(const std::string& secret, const std::string& organization,
                                  const std::string& invitation_id, const std::string& nonce) {
  // A key of its own, so that no other use of the cluster secret can be made to sign tokens.
  const std::string key = topology::HmacSha256(secret, "cmstream invitation token v1");
  return InvitationTokenPrefix(organization) +
         topology::Base64UrlEncode(topology::HmacSha256(key, invitation_id + "." + nonce));
}

std::string RandomInvitationToken(const std::string& organization) {
  return InvitationTokenPrefix(organization) + topology::Base64UrlEncode(topology::RandomBytes(24));
}

std::string NewInvitationNonce() { return topology::Base64UrlEncode(topology::RandomBytes(16)); }

std::optional<std::string> OrganizationOfInvitationToken(const std::string& token) {
  if (token.rfind("cmi_", 0) != 0) return std::nullopt;
  const size_t dot = token.find('.');
  if (dot == std::string::npos || dot == 4 || (dot - 4) % 2 != 0 || dot + 1 >= token.size())
    return std::nullopt;
  return topology::HexDecode(std::string_view(token).substr(4, dot - 4));
}

}  // namespace cm::teams
