#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cm::state {

// Byte encodings that make RocksDB's bytewise key order match the order the stores need.

// Appends v as 8 big-endian bytes: the one fixed-width integer encoding of stored values.
void AppendUint64(std::string& out, uint64_t v);
// Reads the 8 bytes written by AppendUint64; bytes.size() must be at least 8.
uint64_t ReadUint64(std::string_view bytes);

// Appends v as 8 big-endian bytes with the sign bit flipped, so that the bytewise order of the
// encodings is the numeric order of the values (negative before positive).
void AppendOrderedInt64(std::string& out, int64_t v);
// Reads the 8 bytes written by AppendOrderedInt64; bytes.size() must be at least 8.
int64_t ReadOrderedInt64(std::string_view bytes);

// Appends n as 4 big-endian bytes (a length prefix: a key that is a prefix of another key then
// still sorts as a whole unit before it). Throws std::length_error above 4 GiB.
void AppendLength32(std::string& out, size_t n);
uint32_t ReadLength32(std::string_view bytes);
// A string after its Length32, so that keys made of several strings parse back unambiguously.
void AppendLengthPrefixed(std::string& out, std::string_view s);
// Reads what AppendLengthPrefixed wrote at `pos` and advances `pos`; false when too short.
bool ReadLengthPrefixed(std::string_view bytes, size_t& pos, std::string& out);

// A key of an application store: a one-byte tag, then each field length-prefixed, so a prefix
// of whole fields is a prefix scan (processors/*/..._stores.h).
std::string TaggedKey(char tag, std::initializer_list<std::string_view> fields);
// The `count` fields of a TaggedKey with that tag and exactly that many fields, else nullopt.
std::optional<std::vector<std::string>> ParseTaggedKey(std::string_view key, char tag,
                                                       size_t count);

// The smallest string greater than every string starting with prefix, or "" (no upper bound)
// when there is none (prefix empty or all 0xff bytes).
std::string PrefixSuccessor(std::string_view prefix);

// a + b, clamped to the int64_t range (window ends near the limits must not overflow).
int64_t SaturatingAdd(int64_t a, int64_t b);

}  // namespace cm::state
