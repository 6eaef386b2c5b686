// Invitation emails on the topology test driver: the outbox entry a createInvitation writes
// (not on a replay), its cancellation by accept, revoke and expiry, hand-over to the mail
// sender's own threads, retries with backoff, giving up after the maximum age, and the token the
// email carries (rebuilt from the secret, accepted by its hash). The transport is an in-memory
// recorder: the SMTP path is tested against a real server in tests/integration.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>

#include "child_process.h"
#include "processors/teams/invitation_mailer.h"
#include "processors/teams/invitation_token.h"
#include "processors/teams/mail_sender.h"
#include "teams_test_support.h"
#include "topology/common/crypto.h"
#include "topology/runtime/outbox.h"

namespace cm::teams::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kSecret[] = "test-cluster-secret";

// Records every mail; answers with `failure` while it is set; can hold sends until released.
class RecordingTransport final : public MailTransport {
 public:
  state::Status Send(const Mail& mail) override {
    std::unique_lock lock(mu_);
    ++calls_;
    cv_.wait(lock, [&] { return !hold_; });
    if (!failure_.empty()) return state::Status::Unavailable(failure_);
    mails_.push_back(mail);
    return state::Status::OK();
  }
  void Fail(std::string why) {
    std::lock_guard lock(mu_);
    failure_ = std::move(why);
  }
  void Hold(bool hold) {
    {
      std::lock_guard lock(mu_);
      hold_ = hold;
    }
    cv_.notify_all();
  }
  std::vector<Mail> mails() {
    std::lock_guard lock(mu_);
    return mails_;
  }
  int calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string failure_;
  bool hold_ = false;
  int calls_ = 0;
  std::vector<Mail> mails_;
};

TeamsOptions MailOptions(RecordingTransport*& transport, int64_t max_age_ms = 24LL * 3600 * 1000) {
  auto owned = std::make_unique<RecordingTransport>();
  transport = owned.get();
  TeamsOptions o;
  o.invitation_secret = kSecret;
  o.mail.sender = std::make_shared<MailSender>(std::move(owned), MailSenderOptions{});
  o.mail.from = "Teams <teams@example.com>";
  o.mail.public_url = "https://teams.example.com/";
  o.mail.max_age_ms = max_age_ms;
  return o;
}

class TeamsInvitationMail : public ::testing::Test {
 protected:
  explicit TeamsInvitationMail(int64_t max_age_ms = 24LL * 3600 * 1000)
      : h_(MailOptions(transport_, max_age_ms)) {}
  void SetUp() override {
    team_ = h_.Create("org-a", "Core Platform", "alice");
    h_.Events();
  }
  void TearDown() override {
    transport_->Hold(false);
    h_.options().mail.sender->Stop();
  }

  // Makes an invitation as the route does with a cluster secret; returns its token.
  std::string Invite(const std::string& id, json extra = json::object(),
                     std::vector<topology::Header> headers = {}) {
    const std::string nonce = NewInvitationNonce();
    const std::string token = DeriveInvitationToken(kSecret, "org-a", id, nonce);
    extra["teamId"] = team_;
    extra["email"] = "new@example.com";
    extra["invitationId"] = id;
    extra["tokenHash"] = topology::HexEncode(topology::Sha256(token));
    extra["nonce"] = nonce;
    extra["type"] = kCreateInvitation;
    extra["commandId"] = "create-" + id;
    extra["organizationId"] = "org-a";
    extra["actorUserId"] = "alice";
    h_.Advance(1000);
    h_.driver().PipeInput(kCommands, "org-a", extra.dump(), h_.now(), std::move(headers));
    return token;
  }
  std::optional<json> Entry(const std::string& id) {
    auto v = h_.driver()
                 .TaskFor(kCommands, "org-a")
                 .state()
                 .key_value_store(kMailOutboxStore)
                 ->Get(InvitationMailer::OutboxKey("org-a", id));
    if (!v) return std::nullopt;
    return json::parse(*v);
  }
  // One punctuation, then waits until the sender has nothing queued or being sent.
  void Tick(int64_t ms = 1000) {
    h_.driver().AdvanceWallClock(ms);
    ASSERT_TRUE(
        cm::testing::WaitFor([&] { return h_.options().mail.sender->pending() == 0; }, 10s));
  }

  RecordingTransport* transport_ = nullptr;
  TeamsHarness h_;
  std::string team_;
};

TEST_F(TeamsInvitationMail, AnInvitationIsEmailedOnceWithATokenThatAcceptsIt) {
  const std::string token = Invite("inv_1", {{"role", "admin"}, {"message", "Welcome!"}});
  auto entry = Entry("inv_1");
  ASSERT_TRUE(entry);
  EXPECT_EQ((*entry)["state"], "pending");
  EXPECT_EQ((*entry)["email"], "new@example.com");
  EXPECT_EQ((*entry)["teamName"], "Core Platform");
  EXPECT_EQ((*entry)["role"], "admin");
  EXPECT_EQ((*entry)["invitedBy"], "alice");
  EXPECT_EQ((*entry)["attempts"], 0);
  EXPECT_EQ(entry->dump().find(token), std::string::npos) << "the outbox never holds the token";

  Tick();  // handed over and sent
  Tick();  // result collected
  entry = Entry("inv_1");
  EXPECT_EQ((*entry)["state"], "sent") << entry->dump();
  EXPECT_EQ((*entry)["attempts"], 1);
  auto mails = transport_->mails();
  ASSERT_EQ(mails.size(), 1u);
  const Mail& m = mails[0];
  EXPECT_EQ(m.to, "new@example.com");
  EXPECT_EQ(m.from, "Teams <teams@example.com>");
  EXPECT_EQ(m.message_id, "inv_1@cmstream");
  EXPECT_NE(m.subject.find("Core Platform"), std::string::npos) << m.subject;
  EXPECT_NE(m.text.find("https://teams.example.com/v1/invitations/" + token + "/accept"),
            std::string::npos)
      << m.text;
  EXPECT_NE(m.text.find("Welcome!"), std::string::npos);

  for (int i = 0; i < 5; ++i) Tick();
  EXPECT_EQ(transport_->calls(), 1) << "a sent email is never sent again";

  json accepted = h_.Send("org-a", kAcceptInvitation, "nina",
                          {{"tokenHash", topology::HexEncode(topology::Sha256(token))}});
  EXPECT_EQ(Status(accepted), 200) << accepted.dump();
  EXPECT_EQ((*Entry("inv_1"))["state"], "sent");  // accepting after the email changes nothing
}

TEST_F(TeamsInvitationMail, AReplayedInvitationIsNotQueued) {
  Invite("inv_r", json::object(), {{topology::kReplayedHeader, "1"}});
  EXPECT_TRUE(h_.Views("org-a").invitations->Get(keys::InvitationKey("org-a", "inv_r")))
      << "the replay rebuilds the invitation";
  EXPECT_FALSE(Entry("inv_r")) << "but does not queue its email again";
  EXPECT_TRUE(h_.Events().empty()) << "nor publish its event again";
  Tick();
  Tick();
  EXPECT_EQ(transport_->calls(), 0);
}

TEST_F(TeamsInvitationMail, WithoutANonceNothingIsQueued) {
  json r = h_.Send("org-a", kCreateInvitation, "alice",
                   {{"teamId", team_},
                    {"email", "x@example.com"},
                    {"invitationId", "inv_n"},
                    {"tokenHash", "h"}});
  ASSERT_EQ(Status(r), 201);
  EXPECT_FALSE(Entry("inv_n"));
  json bad = h_.Send("org-a", kCreateInvitation, "alice",
                     {{"teamId", team_},
                      {"email", "x@example.com"},
                      {"invitationId", "inv_b"},
                      {"tokenHash", "h2"},
                      {"nonce", "not base64url!"}});
  EXPECT_EQ(Status(bad), 400);
  EXPECT_EQ(bad["body"]["error"]["details"]["field"], "nonce");
}

TEST_F(TeamsInvitationMail, RevokeAndAcceptBeforeSendingCancelTheEmail) {
  Invite("inv_rv");
  const std::string token = Invite("inv_ac");
  json revoked =
      h_.Send("org-a", kRevokeInvitation, "alice", {{"teamId", team_}, {"invitationId", "inv_rv"}});
  ASSERT_EQ(Status(revoked), 200) << revoked.dump();
  json accepted = h_.Send("org-a", kAcceptInvitation, "nina",
                          {{"tokenHash", topology::HexEncode(topology::Sha256(token))}});
  ASSERT_EQ(Status(accepted), 200) << accepted.dump();
  EXPECT_EQ((*Entry("inv_rv"))["state"], "cancelled");
  EXPECT_EQ((*Entry("inv_rv"))["cancelledBecause"], "revoked");
  EXPECT_EQ((*Entry("inv_ac"))["state"], "cancelled");
  EXPECT_EQ((*Entry("inv_ac"))["cancelledBecause"], "accepted");
  Tick();
  Tick();
  EXPECT_EQ(transport_->calls(), 0);
}

TEST_F(TeamsInvitationMail, ExpiryCancelsAnEmailThatHasNotGoneOut) {
  transport_->Fail("421 try later");
  Invite("inv_x", {{"expiresInMs", 5000}});
  Tick();
  Tick();  // one failed attempt recorded
  EXPECT_EQ((*Entry("inv_x"))["attempts"], 1);
  // Past the expiry (record times run ahead of the driver's wall clock by a few seconds).
  h_.driver().AdvanceWallClock(h_.now() - h_.driver().wall_clock_ms() + 10000);
  EXPECT_EQ((*Entry("inv_x"))["state"], "cancelled");
  EXPECT_EQ((*Entry("inv_x"))["cancelledBecause"], "expired");
  const int calls = transport_->calls();
  for (int i = 0; i < 5; ++i) Tick(60000);
  EXPECT_EQ(transport_->calls(), calls);
}

TEST_F(TeamsInvitationMail, FailuresAreRetriedWithExponentialBackoff) {
  transport_->Fail("421 service not available");
  Invite("inv_b");
  int64_t expected = 1000;
  for (int attempt = 1; attempt <= 4; ++attempt) {
    Tick();  // hand over (fails)
    Tick();  // collect
    auto entry = *Entry("inv_b");
    ASSERT_EQ(entry["attempts"], attempt) << entry.dump();
    EXPECT_EQ(entry["state"], "pending");
    EXPECT_NE(entry["lastError"].get<std::string>().find("421"), std::string::npos);
    const int64_t due = entry["nextAttemptAt"].get<int64_t>();
    const int64_t wait = due - h_.driver().wall_clock_ms();
    EXPECT_LE(wait, expected) << "attempt " << attempt;
    EXPECT_GE(wait, expected * 8 / 10) << "attempt " << attempt;
    // Nothing is handed over before the retry is due.
    const int calls = transport_->calls();
    if (wait > 1) Tick(wait - 1);
    EXPECT_EQ(transport_->calls(), calls) << "attempt " << attempt;
    expected *= 2;
  }
  transport_->Fail("");
  for (int i = 0; i < 20 && (*Entry("inv_b"))["state"] != "sent"; ++i) Tick(10000);
  EXPECT_EQ((*Entry("inv_b"))["state"], "sent");
  EXPECT_EQ(transport_->mails().size(), 1u);
}

TEST(TeamsInvitationMailBackoff, DoublesUpToTenMinutesWithJitterOfAtMostAFifth) {
  InvitationMailOptions o;
  for (int n = 1; n <= 30; ++n) {
    const int64_t full = std::min<int64_t>(1000LL << std::min(n - 1, 20), 600'000);
    const int64_t d = InvitationMailer::RetryDelayMs(o, n, "k");
    EXPECT_LE(d, full) << n;
    EXPECT_GE(d, full * 8 / 10) << n;
    EXPECT_EQ(d, InvitationMailer::RetryDelayMs(o, n, "k")) << "deterministic";
  }
  std::set<int64_t> spread;
  for (int i = 0; i < 20; ++i)
    spread.insert(InvitationMailer::RetryDelayMs(o, 5, "key-" + std::to_string(i)));
  EXPECT_GT(spread.size(), 10u) << "keys failing together retry apart";
}

TEST_F(TeamsInvitationMail, AnEmailWithTheSenderIsNotHandedOverAgainUntilItsResultIsIn) {
  transport_->Hold(true);
  Invite("inv_h");
  h_.driver().AdvanceWallClock(1000);
  ASSERT_TRUE(cm::testing::WaitFor([&] { return transport_->calls() == 1; }, 10s));
  for (int i = 0; i < 10; ++i) h_.driver().AdvanceWallClock(5000);  // past its lease
  EXPECT_EQ(transport_->calls(), 1);
  EXPECT_EQ((*Entry("inv_h"))["state"], "pending");
  transport_->Hold(false);
  Tick();
  Tick();
  EXPECT_EQ((*Entry("inv_h"))["state"], "sent");
  EXPECT_EQ(transport_->calls(), 1);
}

TEST_F(TeamsInvitationMail, AResultStillWithTheSenderIsRecordedAfterTheTaskReopens) {
  Invite("inv_c");
  h_.driver().Commit();
  Tick();  // sent, its result not yet collected
  ASSERT_EQ(transport_->mails().size(), 1u);
  ASSERT_TRUE(h_.driver().Restart().ok());  // the punctuation's writes are lost
  EXPECT_EQ((*Entry("inv_c"))["state"], "pending");
  Tick();
  EXPECT_EQ((*Entry("inv_c"))["state"], "sent");
  h_.driver().Commit();
  ASSERT_TRUE(h_.driver().Restart().ok());
  for (int i = 0; i < 3; ++i) Tick(60000);
  EXPECT_EQ(transport_->calls(), 1) << "recorded as sent: never sent again";
}

class TeamsInvitationMailMaxAge : public TeamsInvitationMail {
 protected:
  TeamsInvitationMailMaxAge() : TeamsInvitationMail(30'000) {}
};

TEST_F(TeamsInvitationMailMaxAge, AnEmailNotSentWithinTheMaximumAgeFails) {
  transport_->Fail("connection refused");
  Invite("inv_m");
  for (int i = 0; i < 20 && (*Entry("inv_m"))["state"] == "pending"; ++i) Tick(4000);
  auto entry = *Entry("inv_m");
  EXPECT_EQ(entry["state"], "failed") << entry.dump();
  EXPECT_NE(entry["lastError"].get<std::string>().find("connection refused"), std::string::npos);
  const int calls = transport_->calls();
  EXPECT_GE(calls, 2);
  for (int i = 0; i < 5; ++i) Tick(60000);
  EXPECT_EQ(transport_->calls(), calls);
}

TEST(TeamsInvitationMailOptions, EmailsNeedTheClusterSecret) {
  TeamsOptions o;
  o.own_source = true;
  o.mail.sender = std::make_shared<MailSender>(std::make_unique<RecordingTransport>());
  o.mail.public_url = "http://x";
  topology::TopologyBuilder b;
  auto s = AddTeamsTopology(b, o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("--cluster-secret"), std::string::npos);
  o.invitation_secret = "s";
  topology::TopologyBuilder b2;
  EXPECT_TRUE(AddTeamsTopology(b2, o).ok());
  o.mail.sender->Stop();
}

TEST(TeamsInvitationToken, DerivedFromSecretInvitationAndNonceOnly) {
  const std::string t = DeriveInvitationToken("s1", "org/ä", "inv_1", "nonce-aaaaaaaaaaaaaaaa");
  EXPECT_EQ(OrganizationOfInvitationToken(t), "org/ä");
  EXPECT_EQ(t, DeriveInvitationToken("s1", "org/ä", "inv_1", "nonce-aaaaaaaaaaaaaaaa"));
  EXPECT_NE(t, DeriveInvitationToken("s2", "org/ä", "inv_1", "nonce-aaaaaaaaaaaaaaaa"));
  EXPECT_NE(t, DeriveInvitationToken("s1", "org/ä", "inv_2", "nonce-aaaaaaaaaaaaaaaa"));
  EXPECT_NE(t, DeriveInvitationToken("s1", "org/ä", "inv_1", "nonce-bbbbbbbbbbbbbbbb"));
  // 256 bits of HMAC after the organization: at least the 128 bits DESIGN.md asks for.
  EXPECT_EQ(t.size() - t.find('.') - 1, 43u);
  // The same construction, spelled out.
  const std::string key = topology::HmacSha256("s1", "cmstream invitation token v1");
  EXPECT_EQ(
      t, "cmi_" + topology::HexEncode("org/ä") + "." +
             topology::Base64UrlEncode(topology::HmacSha256(key, "inv_1.nonce-aaaaaaaaaaaaaaaa")));
  const std::string n = NewInvitationNonce();
  EXPECT_EQ(n.size(), 22u);
  EXPECT_NE(n, NewInvitationNonce());
}

}  // namespace
}  // namespace cm::teams::testing
