#pragma once

#include <optional>
#include <string>

namespace cm::teams {

// Invitation tokens are "cmi_" + hex(organizationId) + "." + a secret part, so that the accept
// route finds the organization's task without a lookup; only SHA-256 of the whole token is
// stored. With a server secret (the --cluster-secret) the secret part is derived:
//
//   invitation_key = HMAC-SHA256(secret, "cmstream invitation token v1")
//   secret part    = base64url(HMAC-SHA256(invitation_key, invitationId + "." + nonce))
//
// where nonce is the base64url text of 16 random bytes the route draws. The command (and the
// mail outbox) carry the nonce, never the token: whoever holds the secret can rebuild the token
// just before an email goes out, and nobody else can, so the token is never stored in Kafka or
// RocksDB. Without a secret the secret part is 24 random bytes, as before, and cannot be rebuilt.
std::string InvitationTokenPrefix(const std::string& organization);
std::string DeriveInvitationToken(const std::string& secret, const std::string& organization,
                                  const std::string& invitation_id, const std::string& nonce);
std::string RandomInvitationToken(const std::string& organization);
// 16 random bytes, base64url (22 characters).
std::string NewInvitationNonce();
// The organization a token names; nullopt when it is not a token's shape.
std::optional<std::string> OrganizationOfInvitationToken(const std::string& token);

}  // namespace cm::teams
