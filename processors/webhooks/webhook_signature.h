#pragma once

// Standard Webhooks signatures (https://www.standardwebhooks.com, README "Webhooks"): every
// delivery carries `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`,
// a space-separated list of `v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>` (more
// than one while a secret is rotated). Secrets are shown as `whsec_<base64 of the key>`, so
// receivers can use any Standard Webhooks library with them.
#include <cstdint>
#include <string>
#include <string_view>

#include "state/status.h"

namespace cm::webhooks {

inline constexpr std::string_view kWebhookSecretPrefix = "whsec_";
// How many random bytes a new secret holds: the smallest the specification allows (192 bits).
inline constexpr size_t kWebhookSecretBytes = 24;
// How far a timestamp may be from the receiver's clock, either way, before it is refused: what
// the reference libraries use, so replays are refused after five minutes.
inline constexpr int64_t kDefaultWebhookTolerance = 300;

// `whsec_` and the base64 of 24 bytes from OpenSSL's CSPRNG (38 characters in all).
std::string NewWebhookSecret();

// The key bytes of a `whsec_<base64>` secret. InvalidArgument, saying which, when the prefix is
// missing, the rest is not standard padded base64 or it decodes to no bytes.
state::Result<std::string> DecodeWebhookSecret(std::string_view secret);

// `v1,<base64 signature>` of one message, for the webhook-signature header.
std::string SignWebhook(std::string_view key_bytes, std::string_view msg_id, int64_t timestamp_s,
                        std::string_view body);

// OK when one `v1,` entry of `signature_header` signs (msg_id, timestamp, body) with the
// secret, compared in constant time, and the timestamp is at most `tolerance_s` seconds from
// `now_s` either way. Otherwise InvalidArgument, its message starting with what failed:
//   "webhook secret ..."                      the secret is not whsec_<base64>
//   "webhook-id is missing"
//   "webhook-timestamp is missing" / "webhook-timestamp is not ..."   absent or not digits
//   "webhook-timestamp is too old ..." / "webhook-timestamp is too new ..."
//   "webhook-signature is missing"
//   "no matching signature ..."               no v1 entry matches (or there is none)
state::Status VerifyWebhook(std::string_view secret, std::string_view msg_id,
                            std::string_view timestamp_header, std::string_view signature_header,
                            std::string_view body, int64_t now_s,
                            int64_t tolerance_s = kDefaultWebhookTolerance);

}  // namespace cm::webhooks
