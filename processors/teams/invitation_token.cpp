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
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string org;
  for (size_t i = 4; i < dot; i += 2) {
    const int hi = nibble(token[i]);
    const int lo = nibble(token[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    org.push_back(static_cast<char>(hi * 16 + lo));
  }
  return org;
}

}  // namespace cm::teams
