#pragma once

// Which IP addresses a webhook may be delivered to (SSRF protection, as Svix and the OWASP
// SSRF cheat sheet describe it): an endpoint URL is chosen by a customer, so without this a
// webhook could reach the deployment's own loopback, private network, cloud metadata service
// (169.254.169.254) or anything else only the server can see.
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "state/status.h"

namespace cm::http {

// An IPv4 or IPv6 address, numeric (no names, no zone).
class IpAddress {
 public:
  // Strict textual forms only: dotted-quad IPv4 ("127.0.0.1", not "127.1" or "0x7f.0.0.1") or
  // IPv6 as inet_pton reads it (brackets and zones are refused). nullopt otherwise.
  static std::optional<IpAddress> Parse(std::string_view text);
  // From a sockaddr_in / sockaddr_in6 (what getaddrinfo returns); nullopt for other families.
  static std::optional<IpAddress> FromSockaddr(const sockaddr* address);
  static IpAddress V4(std::array<uint8_t, 4> bytes);
  static IpAddress V6(std::array<uint8_t, 16> bytes);

  bool is_v4() const { return v4_; }
  // 4 bytes for IPv4, 16 for IPv6, network order.
  const uint8_t* bytes() const { return bytes_.data(); }
  int bits() const { return v4_ ? 32 : 128; }
  // The IPv4 address an IPv6 address stands for: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
  // (::a.b.c.d, deprecated) or the NAT64 well-known prefix (64:ff9b::a.b.c.d). Traffic to them
  // ends at that IPv4 host, so they are judged (and allowed) as it is.
  std::optional<IpAddress> EmbeddedV4() const;
  std::string ToString() const;  // inet_ntop's form

  bool operator==(const IpAddress&) const = default;

 private:
  IpAddress() = default;
  bool v4_ = true;
  std::array<uint8_t, 16> bytes_{};
};

// An address prefix such as 10.1.0.0/16 or ::1/128.
struct Cidr {
  IpAddress network;
  int prefix_length = 0;

  // "a.b.c.d/n" (n 0..32) or "v6/n" (n 0..128); a bare address means /32 or /128. Host bits
  // below the prefix must be zero ("10.1.2.3/16" is a mistake, not 10.1.0.0/16).
  static state::Result<Cidr> Parse(std::string_view text);
  bool Contains(const IpAddress& address) const;
  std::string ToString() const;
};

// Why an address is (or is not) refused. Everything but kPublic is refused unless allow-listed.
enum class AddressClass {
  kPublic,
  kUnspecified,    // 0.0.0.0/8 ("this network"), ::
  kLoopback,       // 127.0.0.0/8, ::1
  kPrivate,        // 10/8, 172.16/12, 192.168/16; IPv6 site-local fec0::/10; NAT64 local-use
  kSharedCgnat,    // 100.64.0.0/10, carrier-grade NAT (RFC 6598)
  kLinkLocal,      // 169.254.0.0/16 (cloud metadata lives here), fe80::/10
  kMulticast,      // 224.0.0.0/4, ff00::/8
  kBroadcast,      // 255.255.255.255
  kUniqueLocal,    // fc00::/7, IPv6's private addresses
  kDocumentation,  // 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20
  kBenchmarking,   // 198.18.0.0/15, 2001:2::/48
  kReserved,       // 240.0.0.0/4, 192.0.0.0/24, 192.88.99.0/24, 100::/64, Teredo 2001::/32,
                   // ORCHID 2001:10::/28, and IPv6 outside 2000::/3 not named above
};

std::string_view AddressClassName(AddressClass address_class);

class AddressPolicy {
 public:
  // Refuses every class but kPublic.
  AddressPolicy() = default;
  explicit AddressPolicy(std::vector<Cidr> allow) : allow_(std::move(allow)) {}

  // The value of --webhook-allow-addresses: comma-separated CIDRs ("127.0.0.0/8,::1/128"),
  // blanks around entries ignored, empty means none. InvalidArgument names the bad entry.
  static state::Result<AddressPolicy> FromAllowList(std::string_view comma_separated);

  // What the address is, regardless of the allow-list. IPv4-mapped, -compatible and NAT64
  // IPv6 addresses are classified by their IPv4 address, 6to4 (2002::/16) by its embedded IPv4
  // when that one is not public.
  static AddressClass Classify(const IpAddress& address);

  // kPublic, or inside an allow-listed prefix (the address itself or the IPv4 it embeds).
  bool Allowed(const IpAddress& address) const;

  const std::vector<Cidr>& allow_list() const { return allow_; }

 private:
  std::vector<Cidr> allow_;
};

}  // namespace cm::http
