// Standard Webhooks signatures against the reference libraries' own test cases
// (standard-webhooks/standard-webhooks: libraries/python/tests/test_webhooks.py,
// libraries/javascript/src/webhook.test.ts, libraries/go/webhook_test.go): the same secret,
// message id, payload and expected signature, and the same valid and invalid headers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "processors/webhooks/webhook_signature.h"

namespace cm::webhooks {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// The reference tests' defaults (their `defaultSecret` is used with and without the prefix).
constexpr std::string_view kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr std::string_view kMsgId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr std::string_view kPayload = R"({"test": 2432232314})";
constexpr int64_t kTimestamp = 1614265330;
constexpr std::string_view kExpected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
// A well-formed signature that signs nothing here (the reference tests' decoy).
constexpr std::string_view kDecoy = "Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";

std::string Key() { return DecodeWebhookSecret(kSecret).value(); }

// The headers of a message signed with the reference secret at `timestamp`.
struct Signed {
  std::string timestamp;
  std::string signature;
};
Signed SignAt(int64_t timestamp, std::string_view body = kPayload) {
  return {std::to_string(timestamp), SignWebhook(Key(), kMsgId, timestamp, body)};
}

state::Status Verify(std::string_view timestamp, std::string_view signature,
                     std::string_view body = kPayload, int64_t now = kTimestamp,
                     std::string_view secret = kSecret) {
  return VerifyWebhook(secret, kMsgId, timestamp, signature, body, now);
}

TEST(WebhooksSignatureTest, SignMatchesTheReferenceVector) {
  // "sign function works" (Python and JavaScript).
  EXPECT_EQ(SignWebhook(Key(), kMsgId, kTimestamp, kPayload), kExpected);
  EXPECT_EQ(Key().size(), 24u);
}

TEST(WebhooksSignatureTest, VerifyAcceptsTheReferenceVector) {
  EXPECT_TRUE(Verify("1614265330", kExpected).ok()) << Verify("1614265330", kExpected).ToString();
  // "empty payload" (JavaScript): an empty body is signed like any other.
  const Signed empty = SignAt(kTimestamp, "");
  EXPECT_TRUE(Verify(empty.timestamp, empty.signature, "").ok());
  // Any bytes: the body is signed as it is sent, newlines and non-UTF-8 included.
  const std::string binary("{\"a\":\n\"\xff\x00\xfe\"}\n", 13);
  const Signed b = SignAt(kTimestamp, binary);
  EXPECT_TRUE(Verify(b.timestamp, b.signature, binary).ok());
}

TEST(WebhooksSignatureTest, ARotatedSecretsSignaturesAreTriedInTurn) {
  // "multi sig payload is valid": a wrong v1, a v2 with the same bytes, the valid one, another
  // wrong v1.
  const std::string header = "v1," + std::string(kDecoy) + " v2," + std::string(kDecoy) + " " +
                             std::string(kExpected) + " v1," + std::string(kDecoy);
  EXPECT_TRUE(Verify("1614265330", header).ok()) << Verify("1614265330", header).ToString();

  // What a sender does while rotating: one signature per secret, either secret verifies.
  const std::string other = NewWebhookSecret();
  const std::string both =
      SignWebhook(DecodeWebhookSecret(other).value(), kMsgId, kTimestamp, kPayload) + " " +
      std::string(kExpected);
  EXPECT_TRUE(Verify("1614265330", both, kPayload, kTimestamp, kSecret).ok());
  EXPECT_TRUE(Verify("1614265330", both, kPayload, kTimestamp, other).ok());
}

TEST(WebhooksSignatureTest, RefusesSignaturesThatDoNotSignTheMessage) {
  struct Case {
    const char* what;
    state::Status status;
  };
  const std::string wrong_secret = NewWebhookSecret();
  for (const Case& c : {
           // "invalid signature" (Python): the expected value with its last byte changed.
           Case{"changed byte",
                Verify("1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=")},
           Case{"decoy", Verify("1614265330", "v1," + std::string(kDecoy))},
           // "invalid signature" (JavaScript): not even base64 of 32 bytes.
           Case{"garbage", Verify("1614265330", "v1,dawfeoifkpqwoekfpqoekf")},
           // "partial signature" (JavaScript, Go).
           Case{"partial", Verify("1614265330", kExpected.substr(0, 8))},
           Case{"empty v1", Verify("1614265330", "v1,")},
           Case{"wrong secret",
                Verify("1614265330", kExpected, kPayload, kTimestamp, wrong_secret)},
           Case{"tampered payload", Verify("1614265330", kExpected, R"({"test": 2432232315})")},
           Case{"reformatted payload", Verify("1614265330", kExpected, R"({"test":2432232314})")},
           Case{"other timestamp", Verify("1614265331", kExpected)},
           Case{"other id",
                VerifyWebhook(kSecret, "msg_other", "1614265330", kExpected, kPayload, kTimestamp)},
       }) {
    EXPECT_EQ(c.status.code(), state::Status::Code::kInvalidArgument) << c.what;
    EXPECT_EQ(c.status.message(), "no matching signature") << c.what;
  }
}

TEST(WebhooksSignatureTest, OnlyV1EntriesCount) {
  // The signature without its `v1,` prefix, or under another version, is not a v1 signature.
  const std::string bare(kExpected.substr(3));
  for (const std::string& header :
       {bare, "v2," + bare, "v1a," + bare, "V1," + bare, " v1" + bare, "v1;" + bare}) {
    auto s = Verify("1614265330", header);
    EXPECT_THAT(s.message(), StartsWith("no matching signature: webhook-signature has no v1"))
        << header;
  }
  // Extra spaces between entries are tolerated; a v1 entry glued to another is not one.
  EXPECT_TRUE(Verify("1614265330", "  v2,x   " + std::string(kExpected) + " ").ok());
  EXPECT_FALSE(Verify("1614265330", "v2,x," + std::string(kExpected)).ok());
}

TEST(WebhooksSignatureTest, TimestampsOutsideTheToleranceAreRefusedEitherWay) {
  // "old timestamp fails" / "new timestamp fails": five minutes either way is the limit (the
  // JavaScript and Python libraries accept exactly 300 seconds and refuse 301).
  const Signed old_edge = SignAt(kTimestamp - 300);
  EXPECT_TRUE(Verify(old_edge.timestamp, old_edge.signature).ok());
  const Signed new_edge = SignAt(kTimestamp + 300);
  EXPECT_TRUE(Verify(new_edge.timestamp, new_edge.signature).ok());

  const Signed too_old = SignAt(kTimestamp - 301);
  auto old_status = Verify(too_old.timestamp, too_old.signature);
  EXPECT_EQ(old_status.code(), state::Status::Code::kInvalidArgument);
  EXPECT_THAT(old_status.message(), StartsWith("webhook-timestamp is too old: 301s before now"));
  const Signed too_new = SignAt(kTimestamp + 301);
  auto new_status = Verify(too_new.timestamp, too_new.signature);
  EXPECT_THAT(new_status.message(), StartsWith("webhook-timestamp is too new: 301s after now"));

  // Well signed or not, a replay is refused for its age first.
  EXPECT_THAT(Verify(too_old.timestamp, "v1,x").message(),
              StartsWith("webhook-timestamp is too old"));
  // The tolerance is the caller's.
  EXPECT_TRUE(VerifyWebhook(kSecret, kMsgId, too_old.timestamp, too_old.signature, kPayload,
                            kTimestamp, 301)
                  .ok());
  EXPECT_FALSE(
      VerifyWebhook(kSecret, kMsgId, "1614265330", kExpected, kPayload, kTimestamp + 11, 10).ok());
}

TEST(WebhooksSignatureTest, MissingOrMalformedHeadersSayWhich) {
  // "missing id", "missing timestamp", "invalid timestamp", "missing signature".
  EXPECT_EQ(VerifyWebhook(kSecret, "", "1614265330", kExpected, kPayload, kTimestamp).message(),
            "webhook-id is missing");
  EXPECT_EQ(Verify("", kExpected).message(), "webhook-timestamp is missing");
  EXPECT_EQ(Verify("1614265330", "").message(), "webhook-signature is missing");
  // The header's text is what was signed, so only plain digits are unix seconds.
  for (const char* ts : {"hello", "+1614265330", "-1614265330", " 1614265330", "1614265330 ",
                         "1614265330.0", "1.6e9", "0x60380e72", "99999999999999999999"}) {
    auto s = Verify(ts, kExpected);
    EXPECT_EQ(s.code(), state::Status::Code::kInvalidArgument) << ts;
    EXPECT_THAT(s.message(), StartsWith("webhook-timestamp is not unix seconds")) << ts;
  }
}

TEST(WebhooksSignatureTest, NewSecretsAreWhsecAndTwentyFourRandomBytes) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string secret = NewWebhookSecret();
    EXPECT_THAT(secret, ::testing::MatchesRegex("whsec_[A-Za-z0-9+/]{32}")) << secret;
    EXPECT_EQ(secret.size(), 38u);
    auto key = DecodeWebhookSecret(secret);
    ASSERT_TRUE(key.ok()) << key.status().ToString();
    EXPECT_EQ(key->size(), kWebhookSecretBytes);
    EXPECT_TRUE(seen.insert(*key).second) << "a repeated secret";
    const std::string sig = SignWebhook(*key, kMsgId, kTimestamp, kPayload);
    EXPECT_TRUE(VerifyWebhook(secret, kMsgId, "1614265330", sig, kPayload, kTimestamp).ok());
  }
}

TEST(WebhooksSignatureTest, DecodeWebhookSecretRefusesWhatIsNotWhsecBase64) {
  auto reason = [](std::string_view secret) {
    auto r = DecodeWebhookSecret(secret);
    EXPECT_FALSE(r.ok()) << secret;
    EXPECT_EQ(r.status().code(), state::Status::Code::kInvalidArgument) << secret;
    return r.status().message();
  };
  // The reference libraries also take the bare base64 (and unpadded base64); cmstream asks for
  // the one spelling it shows, so a key pasted from elsewhere is not read in some other way.
  EXPECT_EQ(reason(""), "webhook secret must start with whsec_");
  EXPECT_EQ(reason("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "webhook secret must start with whsec_");
  EXPECT_EQ(reason("WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "webhook secret must start with whsec_");
  EXPECT_EQ(reason("whsec_"), "webhook secret is empty after whsec_");
  for (const char* bad :
       {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-w", "whsec_ MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"}) {
    EXPECT_THAT(reason(bad), HasSubstr("not standard base64 with padding")) << bad;
  }
  // Padded secrets decode. The Python tests' "needs one/two padding" keys ("...LaS=",
  // "...SwBr==") have stray bits after their last byte, which Python's decoder drops;
  // Base64Decode refuses them, as it refuses every second spelling of a key.
  EXPECT_EQ(DecodeWebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBg==")->size(), 25u);
  EXPECT_EQ(DecodeWebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaQ=")->size(), 23u);
  EXPECT_THAT(reason("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr=="), HasSubstr("not standard"));
  EXPECT_THAT(reason("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS="), HasSubstr("not standard"));
  // VerifyWebhook says the same before it looks at anything else.
  EXPECT_EQ(
      VerifyWebhook("whsec_", kMsgId, "1614265330", kExpected, kPayload, kTimestamp).message(),
      "webhook secret is empty after whsec_");
}

}  // namespace
}  // namespace cm::webhooks
