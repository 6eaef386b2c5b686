// The cryptographic primitives against published vectors (FIPS 180-2, RFC 4231, RFC 4648).
#include <gtest/gtest.h>

#include <set>

#include "processors/auth/api_key.h"
#include "topology/common/crypto.h"

namespace cm::topology {
namespace {

TEST(CryptoTest, Sha256AndHmacMatchPublishedVectors) {
  EXPECT_EQ(HexEncode(Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // RFC 4231 test case 2.
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(CryptoTest, Base64FollowsRfc4648) {
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64UrlEncode(std::string("\xfb\xff", 2)), "-_8");
}

TEST(CryptoTest, Base64DecodeUndoesBase64EncodeAndNothingElse) {
  EXPECT_EQ(Base64Decode(""), "");
  EXPECT_EQ(Base64Decode("Zg=="), "f");
  EXPECT_EQ(Base64Decode("Zm8="), "fo");
  EXPECT_EQ(Base64Decode("Zm9v"), "foo");
  EXPECT_EQ(Base64Decode("Zm9vYmFy"), "foobar");
  EXPECT_EQ(Base64Decode("+/8="), std::string("\xfb\xff", 2));
  const std::string all = [] {
    std::string s;
    for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
    return s;
  }();
  for (size_t n = 0; n <= all.size(); n += 37)
    EXPECT_EQ(Base64Decode(Base64Encode(all.substr(0, n))), all.substr(0, n)) << n;
  // Strict: no missing padding, no base64url, no whitespace, '=' only at the end, and no
  // second spelling of a value through non-zero bits after its last byte.
  for (const char* bad : {"Zg", "Zg=", "Zm8", "-_8=", "Zm9v\n", " Zm9v", "Zm 9v",
                          "Zg==Zg==", "Z===", "====", "Zm=v", "Zh==", "Zm9=", "Zm8=="}) {
    EXPECT_EQ(Base64Decode(bad), std::nullopt) << bad;
  }
}

TEST(CryptoTest, ConstantTimeEqualsComparesWholeValues) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
}

TEST(CryptoTest, ApiKeysAreRandomWellFormedAndStoredOnlyAsAHash) {
  std::set<std::string> tokens;
  for (int i = 0; i < 100; ++i) {
    auto key = auth::CreateApiKey("org-a", {"usage:read"}, "u1", "k", 0);
    ASSERT_TRUE(key.ok());
    ASSERT_TRUE(tokens.insert(key->token).second);
    EXPECT_EQ(auth::KeyIdOf(key->token), key->record.key_id);
    EXPECT_EQ(key->record.secret_sha256, auth::TokenHash(key->token));
    EXPECT_EQ(key->record.Serialize().find(key->token.substr(21)), std::string::npos);
  }
  EXPECT_FALSE(auth::CreateApiKey("org-a", {"admin"}, "", "", 0).ok());
  EXPECT_FALSE(auth::CreateApiKey("", {"usage:read"}, "", "", 0).ok());
  EXPECT_FALSE(auth::CreateApiKey("org-a", {"usage:everything"}, "", "", 0).ok());
  EXPECT_FALSE(auth::KeyIdOf("cmk_short").has_value());
}

}  // namespace
}  // namespace cm::topology
