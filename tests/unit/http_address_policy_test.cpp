// bridges/http's SSRF address policy: every special-purpose class is refused by default, IPv6
// forms that reach an IPv4 host are judged by that host, public addresses pass, and an
// allow-list of CIDRs (--webhook-allow-addresses) lets chosen ranges through; a bad entry is an
// error that names it.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "bridges/http/address_policy.h"

namespace cm::http {
namespace {

IpAddress Ip(const std::string& text) {
  std::optional<IpAddress> address = IpAddress::Parse(text);
  if (!address) throw std::invalid_argument("not an address: " + text);
  return *address;
}

AddressClass ClassOf(const std::string& text) { return AddressPolicy::Classify(Ip(text)); }

TEST(HttpAddressPolicyTest, ClassifiesIpv4SpecialPurposeRanges) {
  const std::vector<std::pair<std::string, AddressClass>> cases = {
      {"127.0.0.1", AddressClass::kLoopback},
      {"127.255.255.254", AddressClass::kLoopback},
      {"10.0.0.1", AddressClass::kPrivate},
      {"10.255.255.255", AddressClass::kPrivate},
      {"172.16.0.1", AddressClass::kPrivate},
      {"172.31.255.255", AddressClass::kPrivate},
      {"192.168.1.1", AddressClass::kPrivate},
      {"169.254.169.254", AddressClass::kLinkLocal},  // cloud metadata
      {"100.64.0.1", AddressClass::kSharedCgnat},
      {"100.127.255.255", AddressClass::kSharedCgnat},
      {"224.0.0.1", AddressClass::kMulticast},
      {"239.255.255.250", AddressClass::kMulticast},
      {"0.0.0.0", AddressClass::kUnspecified},
      {"0.1.2.3", AddressClass::kUnspecified},
      {"255.255.255.255", AddressClass::kBroadcast},
      {"240.0.0.1", AddressClass::kReserved},
      {"255.255.255.254", AddressClass::kReserved},
      {"192.0.0.8", AddressClass::kReserved},
      {"192.0.2.10", AddressClass::kDocumentation},
      {"198.51.100.7", AddressClass::kDocumentation},
      {"203.0.113.200", AddressClass::kDocumentation},
      {"198.18.0.1", AddressClass::kBenchmarking},
      {"198.19.255.255", AddressClass::kBenchmarking},
  };
  for (const auto& [text, expected] : cases)
    EXPECT_EQ(ClassOf(text), expected) << text << " is " << AddressClassName(ClassOf(text));
}

TEST(HttpAddressPolicyTest, PublicIpv4AddressesNextToTheRangesAreAllowed) {
  AddressPolicy policy;
  for (const std::string text :
       {"8.8.8.8", "1.1.1.1", "9.255.255.255", "11.0.0.0", "172.15.255.255", "172.32.0.0",
        "192.167.255.255", "192.169.0.0", "100.63.255.255", "100.128.0.0", "169.253.255.255",
        "223.255.255.255", "198.17.255.255", "198.20.0.0", "126.255.255.255", "128.0.0.0"}) {
    EXPECT_EQ(ClassOf(text), AddressClass::kPublic)
        << text << " is " << AddressClassName(ClassOf(text));
    EXPECT_TRUE(policy.Allowed(Ip(text))) << text;
  }
}

TEST(HttpAddressPolicyTest, ClassifiesIpv6SpecialPurposeRanges) {
  const std::vector<std::pair<std::string, AddressClass>> cases = {
      {"::1", AddressClass::kLoopback},
      {"::", AddressClass::kUnspecified},
      {"fe80::1", AddressClass::kLinkLocal},
      {"febf:ffff::1", AddressClass::kLinkLocal},
      {"fc00::1", AddressClass::kUniqueLocal},
      {"fd12:3456:789a::1", AddressClass::kUniqueLocal},
      {"ff02::1", AddressClass::kMulticast},
      {"ff05::1:3", AddressClass::kMulticast},
      {"fec0::1", AddressClass::kPrivate},
      {"2001:db8::1", AddressClass::kDocumentation},
      {"3fff::1", AddressClass::kDocumentation},
      {"2001:2::1", AddressClass::kBenchmarking},
      {"2001::1", AddressClass::kReserved},  // Teredo
      {"100::1", AddressClass::kReserved},   // discard-only
      {"64:ff9b:1::1", AddressClass::kPrivate},
      {"4000::1", AddressClass::kReserved},  // outside 2000::/3
  };
  for (const auto& [text, expected] : cases)
    EXPECT_EQ(ClassOf(text), expected) << text << " is " << AddressClassName(ClassOf(text));
  for (const std::string text :
       {"2606:4700:4700::1111", "2a00:1450:4001:830::200e", "2001:4860::8888"})
    EXPECT_EQ(ClassOf(text), AddressClass::kPublic) << text;
}

TEST(HttpAddressPolicyTest, Ipv6FormsOfAnIpv4HostAreJudgedByIt) {
  // IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
  const std::vector<std::pair<std::string, AddressClass>> cases = {
      {"::ffff:127.0.0.1", AddressClass::kLoopback},
      {"::ffff:7f00:1", AddressClass::kLoopback},
      {"::ffff:10.1.2.3", AddressClass::kPrivate},
      {"::ffff:169.254.169.254", AddressClass::kLinkLocal},
      {"::ffff:0.0.0.0", AddressClass::kUnspecified},
      {"::127.0.0.1", AddressClass::kLoopback},
      {"::192.168.0.1", AddressClass::kPrivate},
      {"64:ff9b::127.0.0.1", AddressClass::kLoopback},
      {"64:ff9b::a9fe:a9fe", AddressClass::kLinkLocal},
      {"64:ff9b::100.64.0.1", AddressClass::kSharedCgnat},
      {"2002:7f00:1::1", AddressClass::kLoopback},
      {"2002:a00:1::1", AddressClass::kPrivate},
      {"::ffff:8.8.8.8", AddressClass::kPublic},
      {"64:ff9b::8.8.8.8", AddressClass::kPublic},
      {"2002:808:808::1", AddressClass::kPublic},
  };
  for (const auto& [text, expected] : cases)
    EXPECT_EQ(ClassOf(text), expected) << text << " is " << AddressClassName(ClassOf(text));
  EXPECT_EQ(Ip("::ffff:127.0.0.1").EmbeddedV4(), Ip("127.0.0.1"));
  EXPECT_EQ(Ip("::1").EmbeddedV4(), std::nullopt);
}

TEST(HttpAddressPolicyTest, EveryClassButPublicIsRefusedByDefault) {
  AddressPolicy policy;
  for (const std::string text :
       {"127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.0.1", "169.254.169.254", "100.64.0.1",
        "224.0.0.1", "0.0.0.0", "255.255.255.255", "240.0.0.1", "192.0.2.1", "198.18.0.1", "::1",
        "::", "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "64:ff9b::10.0.0.1"})
    EXPECT_FALSE(policy.Allowed(Ip(text))) << text;
}

TEST(HttpAddressPolicyTest, EveryClassHasAName) {
  for (AddressClass cls :
       {AddressClass::kPublic, AddressClass::kUnspecified, AddressClass::kLoopback,
        AddressClass::kPrivate, AddressClass::kSharedCgnat, AddressClass::kLinkLocal,
        AddressClass::kMulticast, AddressClass::kBroadcast, AddressClass::kUniqueLocal,
        AddressClass::kDocumentation, AddressClass::kBenchmarking, AddressClass::kReserved})
    EXPECT_NE(AddressClassName(cls), "unknown");
  EXPECT_EQ(AddressClassName(AddressClass::kLoopback), "loopback");
  EXPECT_EQ(AddressClassName(AddressClass::kLinkLocal), "link-local");
}

TEST(HttpAddressPolicyTest, OnlyStrictNumericFormsParse) {
  for (const std::string text : {"127.1", "0x7f.0.0.1", "2130706433", "localhost", "[::1]",
                                 "fe80::1%eth0", "1.2.3.4.5", "256.0.0.1", "", " 1.2.3.4"})
    EXPECT_EQ(IpAddress::Parse(text), std::nullopt) << text;
  EXPECT_EQ(Ip("::ffff:7f00:1").ToString(), "::ffff:127.0.0.1");
  EXPECT_EQ(Ip("2001:DB8:0:0::1").ToString(), "2001:db8::1");
}

TEST(HttpAddressPolicyTest, TheAllowListOverridesTheClasses) {
  auto policy = AddressPolicy::FromAllowList("127.0.0.0/8, ::1/128,10.1.0.0/16");
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  ASSERT_EQ(policy->allow_list().size(), 3u);
  EXPECT_EQ(policy->allow_list()[2].ToString(), "10.1.0.0/16");
  EXPECT_TRUE(policy->Allowed(Ip("127.0.0.1")));
  EXPECT_TRUE(policy->Allowed(Ip("127.9.9.9")));
  EXPECT_TRUE(policy->Allowed(Ip("::1")));
  EXPECT_TRUE(policy->Allowed(Ip("::ffff:127.0.0.1")));  // the same host
  EXPECT_TRUE(policy->Allowed(Ip("10.1.200.3")));
  EXPECT_FALSE(policy->Allowed(Ip("10.2.0.1")));
  EXPECT_FALSE(policy->Allowed(Ip("192.168.0.1")));
  EXPECT_FALSE(policy->Allowed(Ip("169.254.169.254")));
  EXPECT_FALSE(policy->Allowed(Ip("fe80::1")));
  EXPECT_TRUE(policy->Allowed(Ip("8.8.8.8")));
  // Classification itself does not change.
  EXPECT_EQ(AddressPolicy::Classify(Ip("127.0.0.1")), AddressClass::kLoopback);

  auto bare = AddressPolicy::FromAllowList("192.168.7.7");
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  EXPECT_TRUE(bare->Allowed(Ip("192.168.7.7")));
  EXPECT_FALSE(bare->Allowed(Ip("192.168.7.8")));

  auto everything_v6 = AddressPolicy::FromAllowList("::/0");
  ASSERT_TRUE(everything_v6.ok());
  EXPECT_TRUE(everything_v6->Allowed(Ip("fd00::1")));
  EXPECT_FALSE(everything_v6->Allowed(Ip("10.0.0.1")));

  auto none = AddressPolicy::FromAllowList("");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->allow_list().empty());
  EXPECT_FALSE(none->Allowed(Ip("127.0.0.1")));
}

TEST(HttpAddressPolicyTest, ABadAllowListEntryIsAnErrorNamingIt) {
  for (const std::string bad : {"10.0.0.0/33", "::1/129", "10.0.0.0/-1", "10.0.0.0/x", "10.0.0.0/",
                                "localhost", "10.1.2.3/16", "1.2.3/24", "fe80::1%eth0/64"}) {
    auto policy = AddressPolicy::FromAllowList("127.0.0.0/8," + bad);
    ASSERT_FALSE(policy.ok()) << bad;
    EXPECT_EQ(policy.status().code(), state::Status::Code::kInvalidArgument);
    EXPECT_NE(policy.status().message().find("\"" + bad + "\""), std::string::npos)
        << policy.status().message();
  }
  auto empty_entry = AddressPolicy::FromAllowList("127.0.0.0/8,,::1");
  ASSERT_FALSE(empty_entry.ok());
  EXPECT_NE(empty_entry.status().message().find("empty entry"), std::string::npos);
}

}  // namespace
}  // namespace cm::http
