#include "processors/webhooks/webhook_signature.h"

#include <charconv>

#include "topology/common/crypto.h"

namespace cm::webhooks {

using state::Status;

std::string NewWebhookSecret() {
  return std::string(kWebhookSecretPrefix) +
         topology::Base64Encode(topology::RandomBytes(kWebhookSecretBytes));
}

state::Result<std::string> DecodeWebhookSecret(std::string_view secret) {
  if (!secret.starts_with(kWebhookSecretPrefix))
    return Status::InvalidArgument("webhook secret must start with whsec_");
  const std::string_view encoded = secret.substr(kWebhookSecretPrefix.size());
  auto key = topology::Base64Decode(encoded);
  if (!key)
    return Status::InvalidArgument(
        "webhook secret: the part after whsec_ is not standard base64 with padding");
  if (key->empty()) return Status::InvalidArgument("webhook secret is empty after whsec_");
  return std::move(*key);
}

std::string SignWebhook(std::string_view key_bytes, std::string_view msg_id, int64_t timestamp_s,
                        std::string_view body) {
  std::string signed_content;
  signed_content.reserve(msg_id.size() + body.size() + 24);
  signed_content.append(msg_id).append(".").append(std::to_string(timestamp_s)).append(".");
  signed_content.append(body);
  return "v1," + topology::Base64Encode(topology::HmacSha256(key_bytes, signed_content));
}

namespace {

// Unix seconds as the header carries them: decimal digits only. Signs, spaces, fractions and
// exponents are refused rather than read leniently, because the signed content holds the
// header's text, so "+1614265330" and "1614265330" would sign different messages.
bool ParseTimestamp(std::string_view text, int64_t& out) {
  if (text.empty() || text.size() > 18) return false;  // 18 digits cannot overflow int64
  for (char c : text)
    if (c < '0' || c > '9') return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

Status VerifyWebhook(std::string_view secret, std::string_view msg_id,
                     std::string_view timestamp_header, std::string_view signature_header,
                     std::string_view body, int64_t now_s, int64_t tolerance_s) {
  auto key = DecodeWebhookSecret(secret);
  if (!key.ok()) return key.status();
  if (msg_id.empty()) return Status::InvalidArgument("webhook-id is missing");
  if (timestamp_header.empty()) return Status::InvalidArgument("webhook-timestamp is missing");
  int64_t timestamp = 0;
  if (!ParseTimestamp(timestamp_header, timestamp))
    return Status::InvalidArgument("webhook-timestamp is not unix seconds: '" +
                                   std::string(timestamp_header) + "'");
  // Checked before the signature, as the reference libraries do: a replayed message is refused
  // however well it is signed.
  if (now_s - timestamp > tolerance_s)
    return Status::InvalidArgument(
        "webhook-timestamp is too old: " + std::to_string(now_s - timestamp) +
        "s before now (tolerance " + std::to_string(tolerance_s) + "s)");
  if (timestamp - now_s > tolerance_s)
    return Status::InvalidArgument(
        "webhook-timestamp is too new: " + std::to_string(timestamp - now_s) +
        "s after now (tolerance " + std::to_string(tolerance_s) + "s)");
  if (signature_header.empty()) return Status::InvalidArgument("webhook-signature is missing");

  // Compared as base64 text, as the JavaScript library does: Base64Encode has one spelling per
  // value, so equal text means equal bytes, and a malformed entry simply matches nothing.
  const std::string expected = SignWebhook(*key, msg_id, timestamp, body);
  bool any_v1 = false;
  bool matched = false;
  size_t pos = 0;
  while (pos <= signature_header.size()) {
    size_t space = signature_header.find(' ', pos);
    if (space == std::string_view::npos) space = signature_header.size();
    const std::string_view entry = signature_header.substr(pos, space - pos);
    pos = space + 1;
    if (!entry.starts_with("v1,")) continue;  // other versions (v1a, v2...) and junk
    any_v1 = true;
    // Every entry is compared, even after a match, so the time taken does not tell which one
    // matched.
    if (topology::ConstantTimeEquals(entry, expected)) matched = true;
  }
  if (matched) return Status::OK();
  if (!any_v1)
    return Status::InvalidArgument("no matching signature: webhook-signature has no v1 entry");
  return Status::InvalidArgument("no matching signature");
}

}  // namespace cm::webhooks
