// Invitation emails through a real SMTP server: aiosmtpd (tests/support/smtp_sink.py, one per
// test on a free port, storing each message as a file) and the CloudMatrix applications in
// process over the embedded broker, with the SMTP mail sender `cmstream run --smtp-url` uses.
// The email's token is the one POST /v1/invitations/{token}/accept takes; a server that is down
// at first gets the email once it is up; a restart sends no second email; a revoked invitation
// sends none; a replay from the beginning (`cmstream replay`) rebuilds the invitation without
// emailing it again.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "child_process.h"
#include "processors/cloudmatrix/invitation_mail.h"
#include "processors/teams/invitation_mailer.h"
#include "processors/teams/teams_topology.h"
#include "processors/usage/usage_topology.h"
#include "topology/tools/application_reset.h"
#include "usage_instance.h"

namespace cm {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// One received email: its headers (names lower-cased, first occurrence) and body.
struct Email {
  std::map<std::string, std::string> headers;
  std::string body;
  std::string file;
};

class SmtpSink {
 public:
  SmtpSink(std::filesystem::path dir, int port) : dir_(std::move(dir)), port_(port) {}
  ~SmtpSink() { Stop(); }

  void Start() {
    std::filesystem::create_directories(dir_ / "mail");
    process_ = std::make_unique<testing::ChildProcess>(
        std::vector<std::string>{
            "/usr/bin/python3", std::string(CM_SOURCE_DIR) + "/tests/support/smtp_sink.py",
            "--port", std::to_string(port_), "--dir", (dir_ / "mail").string()},
        (dir_ / "smtp-sink.log").string());
    process_->Start();
    ASSERT_TRUE(testing::WaitFor([&] { return Listening(); }, 30s)) << process_->Log();
  }
  void Stop() {
    if (process_) process_->Kill(SIGTERM);
    process_.reset();
  }
  int port() const { return port_; }

  std::vector<Email> Received() const {
    std::vector<Email> out;
    if (!std::filesystem::exists(dir_ / "mail")) return out;
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(dir_ / "mail"))
      if (e.path().filename().string()[0] != '.') files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) out.push_back(Parse(f));
    return out;
  }
  // Waits until at least `n` emails arrived.
  std::vector<Email> AwaitAtLeast(size_t n, std::chrono::milliseconds deadline = 60s) const {
    testing::WaitFor([&] { return Received().size() >= n; }, deadline, 100ms);
    return Received();
  }

 private:
  bool Listening() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
  }
  static Email Parse(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
    Email e;
    e.file = file.string();
    const size_t blank = text.find("\n\n");
    std::istringstream head(text.substr(0, blank));
    e.body = blank == std::string::npos ? "" : text.substr(blank + 2);
    std::string line, last;
    while (std::getline(head, line)) {
      if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
        if (!last.empty()) e.headers[last] += line;
        continue;
      }
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      if (e.headers.emplace(name, value).second) last = name;
    }
    return e;
  }

  std::filesystem::path dir_;
  int port_;
  std::unique_ptr<testing::ChildProcess> process_;
};

class TeamsSmtpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDirectory("cm-it-smtp");
    auto broker = testing::StartUsageBroker(2);
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
    sink_ = std::make_unique<SmtpSink>(dir_, testing::FreePort());
  }
  void TearDown() override {
    instance_.reset();
    sink_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // An instance with invitation emails to the sink (a new mail sender each time, as a new
  // process would have).
  void StartInstance() {
    auto sender =
        cloudmatrix::StartSmtpMailSender("smtp://127.0.0.1:" + std::to_string(sink_->port()));
    ASSERT_TRUE(sender.ok()) << sender.status().ToString();
    teams::TeamsOptions t;
    t.invitation_secret = testing::kTestClusterSecret;
    t.mail.sender = *sender;
    t.mail.from = "CloudMatrix Teams <teams@cloudmatrix.test>";
    t.mail.public_url = "http://cmstream.test";
    instance_ = std::make_unique<testing::UsageInstance>(
        *broker_, testing::UsageInstanceOptions{.application_id = "it-smtp",
                                                .instance_id = "it",
                                                .state_dir = (dir_ / "state").string(),
                                                .usage = {},
                                                .teams = t,
                                                .snapshot_listener = nullptr});
    auto started = instance_->Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
  }
  void StopInstance() {
    if (instance_) instance_->Stop();
    instance_.reset();
  }

  std::string Key(const std::string& org, const std::string& user) {
    json body = {{"organizationId", org},
                 {"scopes", {"teams:read", "teams:write"}},
                 {"userId", user},
                 {"name", "t"}};
    auto r = Call("POST", "/v1/admin/api-keys", body, testing::kTestAdminKey);
    EXPECT_EQ(r.first, 201) << r.second.dump();
    return r.second.value("key", "");
  }
  std::pair<int, json> Call(const std::string& method, const std::string& path, const json& body,
                            const std::string& key) {
    httplib::Client c("127.0.0.1", instance_->port());
    c.set_read_timeout(30, 0);
    httplib::Headers h = {{"Authorization", "Bearer " + key}};
    const std::string text = body.is_null() ? "" : body.dump();
    httplib::Result r = method == "POST"     ? c.Post(path, h, text, "application/json")
                        : method == "DELETE" ? c.Delete(path, h, text, "application/json")
                                             : c.Get(path, h);
    if (!r) return {0, json()};
    return {r->status, json::parse(r->body, nullptr, false)};
  }
  std::string CreateTeam(const std::string& key, const std::string& name) {
    auto r = Call("POST", "/v1/teams", {{"name", name}}, key);
    EXPECT_EQ(r.first, 201) << r.second.dump();
    return r.second.value("id", "");
  }
  json Invite(const std::string& key, const std::string& team, const std::string& email) {
    auto r = Call("POST", "/v1/teams/" + team + "/invitations", {{"email", email}}, key);
    EXPECT_EQ(r.first, 201) << r.second.dump();
    return r.second;
  }

  // The committed outbox entry of an invitation of org-a (null until there is one).
  json Outbox(const std::string& invitation_id) {
    topology::KafkaStreams& streams = instance_->streams();
    const int sub = *streams.topology().SubTopologyOfSource("cloudmatrix.commands");
    json out;
    auto s = streams.Query(
        streams.TaskForKey(sub, "org-a"), [&](const topology::ReadOnlyStores& stores) {
          auto* store = stores.KeyValue(teams::kMailOutboxStore);
          if (store == nullptr) return;
          auto v = store->Get(teams::InvitationMailer::OutboxKey("org-a", invitation_id));
          if (v) out = json::parse(*v, nullptr, false);
        });
    return out;
  }
  bool OutboxState(const std::string& invitation_id, const std::string& state) {
    json e = Outbox(invitation_id);
    return e.is_object() && e.value("state", "") == state;
  }

  static std::vector<Email> For(const std::vector<Email>& mails, const std::string& inv_id) {
    std::vector<Email> out;
    for (const auto& m : mails)
      if (m.headers.count("message-id") &&
          m.headers.at("message-id") == "<" + inv_id + "@cmstream>")
        out.push_back(m);
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<testing::TestBroker> broker_;
  std::unique_ptr<SmtpSink> sink_;
  std::unique_ptr<testing::UsageInstance> instance_;
};

TEST_F(TeamsSmtpTest, TheInvitationEmailCarriesATokenThatAcceptsTheInvitation) {
  sink_->Start();
  StartInstance();
  const std::string alice = Key("org-a", "alice");
  const std::string bob = Key("org-a", "bob");
  const std::string team = CreateTeam(alice, "Design Review");
  json inv = Invite(alice, team, "bob@example.com");
  const std::string inv_id = inv.value("id", "");
  const std::string token = inv.value("token", "");
  ASSERT_FALSE(token.empty());

  auto mails = For(sink_->AwaitAtLeast(1), inv_id);
  ASSERT_EQ(mails.size(), 1u) << "no email for " << inv_id;
  const Email& m = mails[0];
  EXPECT_EQ(m.headers.at("to"), "bob@example.com");
  EXPECT_EQ(m.headers.at("x-envelope-to"), "bob@example.com");
  EXPECT_EQ(m.headers.at("x-envelope-from"), "teams@cloudmatrix.test");
  EXPECT_EQ(m.headers.at("from"), "CloudMatrix Teams <teams@cloudmatrix.test>");
  EXPECT_NE(m.headers.at("subject").find("Design Review"), std::string::npos);
  EXPECT_EQ(m.headers.at("message-id"), "<" + inv_id + "@cmstream>");
  // The email's link and token are the token the inviter was given.
  std::smatch link;
  ASSERT_TRUE(std::regex_search(
      m.body, link,
      std::regex(R"(http://cmstream\.test/v1/invitations/(cmi_[0-9a-f]+\.[A-Za-z0-9_-]+)/accept)")))
      << m.body;
  EXPECT_EQ(link[1].str(), token);
  EXPECT_NE(m.body.find("Invitation token: " + token), std::string::npos);
  ASSERT_TRUE(testing::WaitFor([&] { return OutboxState(inv_id, "sent"); }, 30s))
      << Outbox(inv_id).dump();

  auto accepted = Call("POST", "/v1/invitations/" + link[1].str() + "/accept", nullptr, bob);
  ASSERT_EQ(accepted.first, 200) << accepted.second.dump();
  EXPECT_EQ(accepted.second["userId"], "bob");
  EXPECT_EQ(accepted.second["role"], "member");
  // Nothing stored holds the token: the outbox keeps the nonce it derives from.
  EXPECT_EQ(Outbox(inv_id).dump().find(token.substr(token.find('.') + 1)), std::string::npos);
}

TEST_F(TeamsSmtpTest, AServerThatIsDownAtFirstGetsTheEmailOnceItIsUp) {
  StartInstance();  // the sink's port has no listener yet
  const std::string alice = Key("org-a", "alice");
  const std::string team = CreateTeam(alice, "Ops");
  const std::string inv_id = Invite(alice, team, "carol@example.com").value("id", "");
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        json e = Outbox(inv_id);
        return e.is_object() && e.value("attempts", 0) >= 2;
      },
      60s))
      << Outbox(inv_id).dump();
  json failing = Outbox(inv_id);
  EXPECT_EQ(failing["state"], "pending");
  EXPECT_FALSE(failing["lastError"].get<std::string>().empty());
  EXPECT_GT(failing["nextAttemptAt"].get<int64_t>(), 0);

  sink_->Start();
  auto mails = For(sink_->AwaitAtLeast(1), inv_id);
  ASSERT_EQ(mails.size(), 1u);
  EXPECT_EQ(mails[0].headers.at("to"), "carol@example.com");
  ASSERT_TRUE(testing::WaitFor([&] { return OutboxState(inv_id, "sent"); }, 30s));
  EXPECT_GE(Outbox(inv_id).value("attempts", 0), 3);
}

TEST_F(TeamsSmtpTest, ARestartSendsNoSecondEmailForASentInvitation) {
  sink_->Start();
  StartInstance();
  const std::string alice = Key("org-a", "alice");
  const std::string team = CreateTeam(alice, "Platform");
  const std::string first = Invite(alice, team, "dan@example.com").value("id", "");
  ASSERT_EQ(For(sink_->AwaitAtLeast(1), first).size(), 1u);
  ASSERT_TRUE(testing::WaitFor([&] { return OutboxState(first, "sent"); }, 30s));

  StopInstance();
  StartInstance();  // restores the outbox from local state
  // The mailer of the restarted instance runs: a new invitation's email arrives ...
  const std::string second = Invite(alice, team, "erin@example.com").value("id", "");
  auto mails = sink_->AwaitAtLeast(2);
  ASSERT_EQ(For(mails, second).size(), 1u);
  ASSERT_TRUE(testing::WaitFor([&] { return OutboxState(second, "sent"); }, 30s));
  // ... and the first one was not sent again.
  EXPECT_EQ(For(sink_->Received(), first).size(), 1u);
  EXPECT_EQ(sink_->Received().size(), 2u);
}

TEST_F(TeamsSmtpTest, AnInvitationRevokedBeforeItsEmailWentOutSendsNothing) {
  StartInstance();  // no SMTP server yet: the first email cannot go out
  const std::string alice = Key("org-a", "alice");
  const std::string team = CreateTeam(alice, "Security");
  const std::string revoked = Invite(alice, team, "frank@example.com").value("id", "");
  auto r = Call("DELETE", "/v1/teams/" + team + "/invitations/" + revoked, nullptr, alice);
  ASSERT_EQ(r.first, 200) << r.second.dump();
  ASSERT_TRUE(testing::WaitFor([&] { return OutboxState(revoked, "cancelled"); }, 30s))
      << Outbox(revoked).dump();

  sink_->Start();
  const std::string kept = Invite(alice, team, "grace@example.com").value("id", "");
  auto mails = sink_->AwaitAtLeast(1);
  ASSERT_EQ(For(mails, kept).size(), 1u);
  ASSERT_TRUE(testing::WaitFor([&] { return OutboxState(kept, "sent"); }, 30s));
  EXPECT_TRUE(For(sink_->Received(), revoked).empty());
  EXPECT_EQ(sink_->Received().size(), 1u);
}

TEST_F(TeamsSmtpTest, AReplayFromTheBeginningRebuildsInvitationsWithoutEmailingThemAgain) {
  sink_->Start();
  StartInstance();
  const std::string alice = Key("org-a", "alice");
  const std::string bob = Key("org-a", "bob");
  const std::string team = CreateTeam(alice, "Replayed");
  json inv = Invite(alice, team, "henry@example.com");
  const std::string first = inv.value("id", "");
  ASSERT_EQ(For(sink_->AwaitAtLeast(1), first).size(), 1u);
  ASSERT_TRUE(testing::WaitFor([&] { return OutboxState(first, "sent"); }, 30s));

  // `cmstream replay` from the beginning: local state and changelogs go, the input is read again.
  StopInstance();
  topology::TopologyBuilder builder;
  ASSERT_TRUE(auth::AuthApplication().AddTo(builder).ok());
  ASSERT_TRUE(usage::AddUsageTopology(builder).ok());
  ASSERT_TRUE(teams::AddTeamsTopology(builder).ok());
  auto topology = builder.Build("it-smtp");
  ASSERT_TRUE(topology.ok()) << topology.status().ToString();
  topology::ResetOptions o;
  o.bootstrap_servers = broker_->bootstrap_servers();
  o.embedded_broker = true;
  o.state_dir = (dir_ / "state").string();
  topology::ApplicationReset reset(*topology, o, broker_->admin());
  auto plan = reset.Plan();
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_TRUE(reset.Apply(*plan).ok());
  StartInstance();

  // A new invitation's email arrives after the replayed commands were processed (one
  // organization, one partition) ...
  const std::string second = Invite(alice, team, "ivy@example.com").value("id", "");
  ASSERT_EQ(For(sink_->AwaitAtLeast(2), second).size(), 1u);
  ASSERT_TRUE(testing::WaitFor([&] { return OutboxState(second, "sent"); }, 30s));
  // ... the first was not emailed again and has no outbox entry, yet the replay rebuilt it.
  EXPECT_EQ(For(sink_->Received(), first).size(), 1u);
  EXPECT_EQ(sink_->Received().size(), 2u);
  EXPECT_TRUE(Outbox(first).is_null()) << Outbox(first).dump();
  auto accepted =
      Call("POST", "/v1/invitations/" + inv.value("token", "") + "/accept", nullptr, bob);
  EXPECT_EQ(accepted.first, 200) << accepted.second.dump();
}

}  // namespace
}  // namespace cm
