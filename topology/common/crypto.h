#pragma once

// The few cryptographic primitives cmstream needs (OpenSSL underneath): random tokens, SHA-256,
// HMAC-SHA256 and a comparison that takes the same time wherever two secrets differ.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cm::topology {

// `bytes` bytes from OpenSSL's CSPRNG (RAND_bytes). Throws when the generator fails: no
// process should go on handing out guessable secrets.
std::string RandomBytes(size_t bytes);
// Raw 32-byte digests.
std::string Sha256(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);
// Lower-case hex, and base64url without padding (RFC 4648 §5); standard base64 with padding.
std::string HexEncode(std::string_view bytes);
// nullopt unless `hex` is an even number of lower-case hex digits (what HexEncode writes).
std::optional<std::string> HexDecode(std::string_view hex);
std::string Base64UrlEncode(std::string_view bytes);
std::string Base64Encode(std::string_view bytes);
// nullopt unless `text` is what Base64Encode writes: the standard alphabet, padded to a multiple
// of four, no whitespace, and zero bits after the last byte (so each value has one encoding).
std::optional<std::string> Base64Decode(std::string_view text);
// True when a == b, in time that depends on the lengths only (CRYPTO_memcmp).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace cm::topology
