#include "bridges/http/address_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "bridges/http/ascii.h"

namespace cm::http {

namespace {

// Whether the first `prefix` bits of `a` and `b` (network order) are equal.
bool SamePrefix(const uint8_t* a, const uint8_t* b, int prefix) {
  int whole = prefix / 8;
  if (std::memcmp(a, b, static_cast<size_t>(whole)) != 0) return false;
  int rest = prefix % 8;
  if (rest == 0) return true;
  auto mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

struct Range {
  IpAddress network;
  int prefix;
  AddressClass address_class;
};

Range V4Range(uint8_t a, uint8_t b, uint8_t c, uint8_t d, int prefix, AddressClass cls) {
  return {IpAddress::V4({a, b, c, d}), prefix, cls};
}

// Leading 16-bit groups of an IPv6 prefix; the rest is zero.
Range V6Range(std::initializer_list<uint16_t> groups, int prefix, AddressClass cls) {
  std::array<uint8_t, 16> bytes{};
  size_t i = 0;
  for (uint16_t group : groups) {
    bytes[i++] = static_cast<uint8_t>(group >> 8);
    bytes[i++] = static_cast<uint8_t>(group & 0xff);
  }
  return {IpAddress::V6(bytes), prefix, cls};
}

// IANA's IPv4 special-purpose registry, most specific first where ranges nest.
const std::vector<Range>& V4Ranges() {
  static const std::vector<Range> ranges = {
      V4Range(255, 255, 255, 255, 32, AddressClass::kBroadcast),
      V4Range(0, 0, 0, 0, 8, AddressClass::kUnspecified),
      V4Range(10, 0, 0, 0, 8, AddressClass::kPrivate),
      V4Range(100, 64, 0, 0, 10, AddressClass::kSharedCgnat),
      V4Range(127, 0, 0, 0, 8, AddressClass::kLoopback),
      V4Range(169, 254, 0, 0, 16, AddressClass::kLinkLocal),
      V4Range(172, 16, 0, 0, 12, AddressClass::kPrivate),
      V4Range(192, 0, 0, 0, 24, AddressClass::kReserved),  // IETF protocol assignments
      V4Range(192, 0, 2, 0, 24, AddressClass::kDocumentation),
      V4Range(192, 88, 99, 0, 24, AddressClass::kReserved),  // 6to4 relay anycast, deprecated
      V4Range(192, 168, 0, 0, 16, AddressClass::kPrivate),
      V4Range(198, 18, 0, 0, 15, AddressClass::kBenchmarking),
      V4Range(198, 51, 100, 0, 24, AddressClass::kDocumentation),
      V4Range(203, 0, 113, 0, 24, AddressClass::kDocumentation),
      V4Range(224, 0, 0, 0, 4, AddressClass::kMulticast),
      V4Range(240, 0, 0, 0, 4, AddressClass::kReserved),
  };
  return ranges;
}

// IANA's IPv6 special-purpose registry (the IPv4-embedding prefixes are handled before).
const std::vector<Range>& V6Ranges() {
  static const std::vector<Range> ranges = {
      V6Range({0x0064, 0xff9b, 0x0001}, 48, AddressClass::kPrivate),  // local-use NAT64
      V6Range({0x0100}, 64, AddressClass::kReserved),                 // discard-only
      V6Range({0x2001, 0x0002}, 48, AddressClass::kBenchmarking),
      V6Range({0x2001, 0x0db8}, 32, AddressClass::kDocumentation),
      V6Range({0x2001, 0x0010}, 28, AddressClass::kReserved),  // ORCHID, deprecated
      // Teredo tunnels to an IPv4 host it encodes (obfuscated); refused rather than decoded.
      V6Range({0x2001}, 32, AddressClass::kReserved),
      V6Range({0x3fff}, 20, AddressClass::kDocumentation),
      V6Range({0xfc00}, 7, AddressClass::kUniqueLocal),
      V6Range({0xfe80}, 10, AddressClass::kLinkLocal),
      V6Range({0xfec0}, 10, AddressClass::kPrivate),  // site-local, deprecated
      V6Range({0xff00}, 8, AddressClass::kMulticast),
  };
  return ranges;
}

AddressClass ClassifyIn(const std::vector<Range>& ranges, const IpAddress& address) {
  for (const Range& range : ranges)
    if (SamePrefix(range.network.bytes(), address.bytes(), range.prefix))
      return range.address_class;
  return AddressClass::kPublic;
}

}  // namespace

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  std::string copy(text);
  IpAddress address;
  // inet_pton (unlike inet_aton) takes only dotted quads for IPv4.
  if (inet_pton(AF_INET, copy.c_str(), address.bytes_.data()) == 1) {
    address.v4_ = true;
    return address;
  }
  if (inet_pton(AF_INET6, copy.c_str(), address.bytes_.data()) == 1) {
    address.v4_ = false;
    return address;
  }
  return std::nullopt;
}

std::optional<IpAddress> IpAddress::FromSockaddr(const sockaddr* address) {
  if (address == nullptr) return std::nullopt;
  if (address->sa_family == AF_INET) {
    std::array<uint8_t, 4> bytes;
    std::memcpy(bytes.data(), &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, 4);
    return V4(bytes);
  }
  if (address->sa_family == AF_INET6) {
    std::array<uint8_t, 16> bytes;
    std::memcpy(bytes.data(), &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, 16);
    return V6(bytes);
  }
  return std::nullopt;
}

IpAddress IpAddress::V4(std::array<uint8_t, 4> bytes) {
  IpAddress address;
  address.v4_ = true;
  std::copy(bytes.begin(), bytes.end(), address.bytes_.begin());
  return address;
}

IpAddress IpAddress::V6(std::array<uint8_t, 16> bytes) {
  IpAddress address;
  address.v4_ = false;
  address.bytes_ = bytes;
  return address;
}

std::optional<IpAddress> IpAddress::EmbeddedV4() const {
  if (v4_) return std::nullopt;
  const uint8_t* b = bytes_.data();
  auto last_four = [&] { return V4({b[12], b[13], b[14], b[15]}); };
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  static constexpr uint8_t kNat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  static constexpr uint8_t kZero[12] = {};
  if (std::memcmp(b, kMapped, 12) == 0 || std::memcmp(b, kNat64, 12) == 0) return last_four();
  // ::a.b.c.d, except :: and ::1 themselves (which are IPv6's own unspecified and loopback).
  if (std::memcmp(b, kZero, 12) == 0 && (b[12] | b[13] | b[14]) != 0) return last_four();
  return std::nullopt;
}

std::string IpAddress::ToString() const {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(v4_ ? AF_INET : AF_INET6, bytes_.data(), text, sizeof text);
  return text;
}

state::Result<Cidr> Cidr::Parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return state::Status::InvalidArgument("bad address prefix \"" + std::string(text) +
                                          "\": " + std::string(why));
  };
  std::string_view address_text = text;
  std::optional<int> prefix;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    address_text = text.substr(0, slash);
    std::string_view digits = text.substr(slash + 1);
    int value = -1;
    auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || digits.size() > 3 || error != std::errc() ||
        end != digits.data() + digits.size())
      return bad("the prefix length is not a number");
    prefix = value;
  }
  std::optional<IpAddress> address = IpAddress::Parse(address_text);
  if (!address) return bad("not an IPv4 or IPv6 address");
  int length = prefix.value_or(address->bits());
  if (length < 0 || length > address->bits())
    return bad("the prefix length must be 0.." + std::to_string(address->bits()));
  // Host bits set below the prefix usually mean a typo in the prefix length.
  for (int bit = length; bit < address->bits(); ++bit)
    if (address->bytes()[bit / 8] & (0x80 >> (bit % 8)))
      return bad("address bits are set below the prefix length");
  return Cidr{*address, length};
}

bool Cidr::Contains(const IpAddress& address) const {
  return address.is_v4() == network.is_v4() &&
         SamePrefix(network.bytes(), address.bytes(), prefix_length);
}

std::string Cidr::ToString() const {
  return network.ToString() + "/" + std::to_string(prefix_length);
}

std::string_view AddressClassName(AddressClass address_class) {
  switch (address_class) {
    case AddressClass::kPublic:
      return "public";
    case AddressClass::kUnspecified:
      return "unspecified";
    case AddressClass::kLoopback:
      return "loopback";
    case AddressClass::kPrivate:
      return "private";
    case AddressClass::kSharedCgnat:
      return "shared (CGNAT)";
    case AddressClass::kLinkLocal:
      return "link-local";
    case AddressClass::kMulticast:
      return "multicast";
    case AddressClass::kBroadcast:
      return "broadcast";
    case AddressClass::kUniqueLocal:
      return "unique local";
    case AddressClass::kDocumentation:
      return "documentation";
    case AddressClass::kBenchmarking:
      return "benchmarking";
    case AddressClass::kReserved:
      return "reserved";
  }
  return "unknown";
}

state::Result<AddressPolicy> AddressPolicy::FromAllowList(std::string_view comma_separated) {
  std::vector<Cidr> allow;
  std::string_view rest = comma_separated;
  while (!TrimBlanks(rest).empty()) {
    size_t comma = rest.find(',');
    std::string_view entry = TrimBlanks(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (entry.empty())
      return state::Status::InvalidArgument("empty entry in the address allow-list \"" +
                                            std::string(comma_separated) + "\"");
    state::Result<Cidr> cidr = Cidr::Parse(entry);
    if (!cidr.ok()) return cidr.status();
    allow.push_back(*cidr);
  }
  return AddressPolicy(std::move(allow));
}

AddressClass AddressPolicy::Classify(const IpAddress& address) {
  if (address.is_v4()) return ClassifyIn(V4Ranges(), address);
  static constexpr uint8_t kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static constexpr uint8_t kZero[16] = {};
  if (std::memcmp(address.bytes(), kZero, 16) == 0) return AddressClass::kUnspecified;
  if (std::memcmp(address.bytes(), kLoopback, 16) == 0) return AddressClass::kLoopback;
  if (std::optional<IpAddress> v4 = address.EmbeddedV4()) return Classify(*v4);
  const uint8_t* b = address.bytes();
  if (b[0] == 0x20 && b[1] == 0x02) {  // 6to4: 2002:aabb:ccdd::/48 routes to a.b.c.d
    AddressClass embedded = Classify(IpAddress::V4({b[2], b[3], b[4], b[5]}));
    if (embedded != AddressClass::kPublic) return embedded;
  }
  AddressClass named = ClassifyIn(V6Ranges(), address);
  if (named != AddressClass::kPublic) return named;
  // Global unicast is 2000::/3; everything else unnamed is unassigned or special.
  return (b[0] & 0xe0) == 0x20 ? AddressClass::kPublic : AddressClass::kReserved;
}

bool AddressPolicy::Allowed(const IpAddress& address) const {
  if (Classify(address) == AddressClass::kPublic) return true;
  std::optional<IpAddress> v4 = address.EmbeddedV4();
  return std::any_of(allow_.begin(), allow_.end(), [&](const Cidr& cidr) {
    return cidr.Contains(address) || (v4 && cidr.Contains(*v4));
  });
}

}  // namespace cm::http
