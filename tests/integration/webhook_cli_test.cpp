// `cmstream webhook sign|verify` (README "Webhooks"): what it signs it verifies, a changed body,
// an old timestamp or another secret fails with exit code 1 and the reason, and its headers
// agree both ways with the Standard Webhooks reference library for Node (npm
// `standardwebhooks`, installed into the build directory on first use).
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "processors/webhooks/webhook_signature.h"
#include "topology/common/wall_clock.h"

extern char** environ;

namespace cm {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
namespace fs = std::filesystem;

struct Ran {
  int code = -1;  // -1: did not start, did not exit by itself before the deadline, or a signal
  std::string out;
  std::string err;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// Runs `argv` (found on PATH) with `input` on standard input and `env` added to the
// environment (an empty value removes the variable), to its end or the deadline: its exit code and
// what it wrote to stdout and stderr, separately (a command's result is on stdout, its reason for
// failing on stderr).
Ran RunProgram(const std::vector<std::string>& argv, const fs::path& dir, const std::string& input,
               const std::map<std::string, std::string>& env = {},
               std::chrono::seconds deadline = std::chrono::seconds(120)) {
  static int runs = 0;
  const std::string n = std::to_string(++runs);
  const fs::path in = dir / ("stdin-" + n), out = dir / ("stdout-" + n),
                 err = dir / ("stderr-" + n);
  WriteFile(in, input);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    if (!env.contains(entry.substr(0, entry.find('=')))) env_strings.push_back(entry);
  }
  for (const auto& [name, value] : env)
    if (!value.empty()) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp, args;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int spawned = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  Ran ran;
  if (spawned != 0) {
    ran.err = argv[0] + ": " + std::strerror(spawned);
    return ran;
  }
  int status = 0;
  const bool exited = testing::WaitFor([&] { return ::waitpid(pid, &status, WNOHANG) == pid; },
                                       deadline, std::chrono::milliseconds(20));
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  ran.code = exited && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  ran.out = ReadFile(out);
  ran.err = ReadFile(err);
  return ran;
}

// The `name: value` lines `webhook sign` prints.
std::map<std::string, std::string> ParseHeaders(const std::string& text) {
  std::map<std::string, std::string> headers;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const size_t colon = line.find(": ");
    if (colon != std::string::npos) headers.emplace(line.substr(0, colon), line.substr(colon + 2));
  }
  return headers;
}

class WebhookCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::FreshTestDirectory("cm-webhook");
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `cmstream webhook args...`; CM_WEBHOOK_SECRET is unset unless `env` sets it, so a secret
  // in the developer's environment cannot stand in for a missing --secret.
  Ran Cmstream(std::vector<std::string> args, const std::string& input = "",
               const std::map<std::string, std::string>& env = {{"CM_WEBHOOK_SECRET", ""}}) {
    args.insert(args.begin(), {testing::CmstreamBinary(), "webhook"});
    return RunProgram(args, dir_, input, env);
  }
  // The headers of `body` signed by `cmstream webhook sign` (at `timestamp`, when given).
  std::map<std::string, std::string> Sign(const std::string& secret, const std::string& id,
                                          const std::string& body,
                                          const std::string& timestamp = "") {
    std::vector<std::string> args{"sign", "--secret", secret, "--id", id};
    if (!timestamp.empty()) args.insert(args.end(), {"--timestamp", timestamp});
    const Ran r = Cmstream(args, body);
    EXPECT_EQ(r.code, 0) << r.err;
    return ParseHeaders(r.out);
  }
  fs::path Body(const std::string& name, const std::string& content) {
    WriteFile(dir_ / name, content);
    return dir_ / name;
  }

  fs::path dir_;
};

TEST_F(WebhookCliTest, SignPrintsTheReferenceVectorsHeaders) {
  const Ran r = Cmstream({"sign", "--secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "--id",
                          "msg_p5jXN8AQM9LWM0D4loKWxJek", "--timestamp", "1614265330"},
                         R"({"test": 2432232314})");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "webhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek\n"
            "webhook-timestamp: 1614265330\n"
            "webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\n");
}

TEST_F(WebhookCliTest, VerifyAcceptsWhatSignSignedAndRefusesATamperedBody) {
  const std::string secret = webhooks::NewWebhookSecret();
  const std::string body =
      "{\"type\": \"usage.quota_exceeded\", \"data\": {\"orgId\": \"acme\"}}\n";
  const fs::path file = Body("body.json", body);
  const Ran signed_file =
      Cmstream({"sign", "--secret", secret, "--id", "msg_1", "--body-file", file.string()});
  ASSERT_EQ(signed_file.code, 0) << signed_file.err;
  auto h = ParseHeaders(signed_file.out);
  ASSERT_EQ(h.size(), 3u) << signed_file.out;
  EXPECT_EQ(h["webhook-id"], "msg_1");
  // The default timestamp is now.
  const int64_t now = topology::WallClockMs() / 1000;
  EXPECT_LE(std::abs(std::stoll(h["webhook-timestamp"]) - now), 5) << h["webhook-timestamp"];
  EXPECT_THAT(h["webhook-signature"], ::testing::MatchesRegex("v1,[A-Za-z0-9+/]{43}="));
  // The same body on standard input signs the same.
  EXPECT_EQ(Sign(secret, "msg_1", body, h["webhook-timestamp"])["webhook-signature"],
            h["webhook-signature"]);

  const std::vector<std::string> verify{"verify",
                                        "--secret",
                                        secret,
                                        "--id",
                                        "msg_1",
                                        "--timestamp",
                                        h["webhook-timestamp"],
                                        "--signature",
                                        h["webhook-signature"]};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = verify;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const Ran ok_file = Cmstream(with({"--body-file", file.string()}));
  EXPECT_EQ(ok_file.code, 0) << ok_file.err;
  EXPECT_EQ(ok_file.out, "valid\n");
  const Ran ok_stdin = Cmstream(verify, body);
  EXPECT_EQ(ok_stdin.code, 0) << ok_stdin.err;
  EXPECT_EQ(ok_stdin.out, "valid\n");

  // One changed byte, a missing trailing newline, another id: exit 1, the reason on stderr.
  for (const std::string& tampered :
       {std::string("{\"type\": \"usage.quota_exceeded\", \"data\": {\"orgId\": \"acmf\"}}\n"),
        body.substr(0, body.size() - 1)}) {
    const Ran bad = Cmstream(with({"--body-file", Body("tampered.json", tampered).string()}));
    EXPECT_EQ(bad.code, 1) << tampered;
    EXPECT_EQ(bad.out, "");
    EXPECT_EQ(bad.err, "cmstream webhook verify: no matching signature\n");
  }
  std::vector<std::string> other_id = verify;
  other_id[4] = "msg_2";
  EXPECT_EQ(Cmstream(other_id, body).code, 1);
  std::vector<std::string> other_secret = verify;
  other_secret[2] = webhooks::NewWebhookSecret();
  const Ran bad_secret = Cmstream(other_secret, body);
  EXPECT_EQ(bad_secret.code, 1);
  EXPECT_THAT(bad_secret.err, HasSubstr("no matching signature"));
}

TEST_F(WebhookCliTest, VerifySaysWhyAMessageIsRefused) {
  const std::string secret = webhooks::NewWebhookSecret();
  const std::string body = R"({"ok":true})";
  const std::string old_ts = std::to_string(topology::WallClockMs() / 1000 - 600);
  const auto old = Sign(secret, "msg_old", body, old_ts);
  std::vector<std::string> verify{"verify", "--secret",    secret,
                                  "--id",   "msg_old",     "--timestamp",
                                  old_ts,   "--signature", old.at("webhook-signature")};
  const Ran too_old = Cmstream(verify, body);
  EXPECT_EQ(too_old.code, 1);
  EXPECT_THAT(too_old.err, StartsWith("cmstream webhook verify: webhook-timestamp is too old"));
  verify.insert(verify.end(), {"--tolerance", "3600"});
  const Ran tolerated = Cmstream(verify, body);
  EXPECT_EQ(tolerated.code, 0) << tolerated.err;

  const std::string future_ts = std::to_string(topology::WallClockMs() / 1000 + 600);
  const auto future = Sign(secret, "msg_new", body, future_ts);
  const Ran too_new = Cmstream({"verify", "--secret", secret, "--id", "msg_new", "--timestamp",
                                future_ts, "--signature", future.at("webhook-signature")},
                               body);
  EXPECT_EQ(too_new.code, 1);
  EXPECT_THAT(too_new.err, HasSubstr("webhook-timestamp is too new"));

  const Ran malformed = Cmstream({"verify", "--secret", secret, "--id", "msg_old", "--timestamp",
                                  "yesterday", "--signature", "v1,x"},
                                 body);
  EXPECT_EQ(malformed.code, 1);
  EXPECT_THAT(malformed.err, HasSubstr("webhook-timestamp is not unix seconds: 'yesterday'"));

  const std::string now_ts = std::to_string(topology::WallClockMs() / 1000);
  const auto fresh = Sign(secret, "msg_now", body, now_ts);
  const std::string sig = fresh.at("webhook-signature");
  const Ran unversioned = Cmstream({"verify", "--secret", secret, "--id", "msg_now", "--timestamp",
                                    now_ts, "--signature", sig.substr(3)},
                                   body);
  EXPECT_EQ(unversioned.code, 1);
  EXPECT_THAT(unversioned.err, HasSubstr("has no v1 entry"));
  // Rotation: the receiver's secret signs one of the entries.
  const Ran rotated =
      Cmstream({"verify", "--secret", secret, "--id", "msg_now", "--timestamp", now_ts,
                "--signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + sig},
               body);
  EXPECT_EQ(rotated.code, 0) << rotated.err;
  EXPECT_EQ(rotated.out, "valid\n");
}

TEST_F(WebhookCliTest, TheSecretMayComeFromTheEnvironmentAndMustBeWhsec) {
  const std::string secret = webhooks::NewWebhookSecret();
  const std::map<std::string, std::string> env{{"CM_WEBHOOK_SECRET", secret}};
  const Ran signed_env =
      Cmstream({"sign", "--id", "msg_env", "--timestamp", "1700000000"}, "hello", env);
  ASSERT_EQ(signed_env.code, 0) << signed_env.err;
  auto h = ParseHeaders(signed_env.out);
  EXPECT_EQ(Sign(secret, "msg_env", "hello", "1700000000"), h);
  const Ran verified =
      Cmstream({"verify", "--id", "msg_env", "--timestamp", "1700000000", "--signature",
                h.at("webhook-signature"), "--tolerance", "1000000000"},
               "hello", env);
  EXPECT_EQ(verified.code, 0) << verified.err;

  // A secret that is not whsec_<base64> is a bad flag (exit 2), for either command.
  for (const char* bad : {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!"}) {
    const Ran s = Cmstream({"sign", "--secret", bad, "--id", "m", "--timestamp", "1"}, "x");
    EXPECT_EQ(s.code, 2) << bad;
    EXPECT_THAT(s.err, StartsWith("cmstream webhook sign: webhook secret")) << bad;
    EXPECT_EQ(s.out, "");
    const Ran v = Cmstream(
        {"verify", "--secret", bad, "--id", "m", "--timestamp", "1", "--signature", "v1,x"}, "x");
    EXPECT_EQ(v.code, 2) << bad;
    EXPECT_THAT(v.err, StartsWith("cmstream webhook verify: webhook secret")) << bad;
  }
  const Ran no_body = Cmstream(
      {"sign", "--secret", secret, "--id", "m", "--body-file", (dir_ / "missing.json").string()});
  EXPECT_EQ(no_body.code, 2);
  EXPECT_THAT(no_body.err, HasSubstr("cannot read --body-file"));
}

// The Node reference library (npm standardwebhooks), pinned, installed once per build
// directory; a missing npm fails the test, since the point is to check against the library.
constexpr const char* kStandardWebhooksPackage = "standardwebhooks@1.1.1";

// Signs or verifies with the library: `node sw.cjs MODULE sign SECRET ID TS BODY_FILE` prints
// the signature; `... verify SECRET ID TS SIGNATURE BODY_FILE` prints `valid` or fails.
constexpr const char* kNodeScript = R"js('use strict';
const fs = require('fs');
const [modulePath, mode, secret, id, timestamp, fourth, fifth] = process.argv.slice(2);
const { Webhook } = require(modulePath);
const wh = new Webhook(secret);
if (mode === 'sign') {
  const body = fs.readFileSync(fourth, 'utf8');
  process.stdout.write(wh.sign(id, new Date(Number(timestamp) * 1000), body) + '\n');
} else {
  const body = fs.readFileSync(fifth, 'utf8');
  try {
    wh.verify(body, { 'webhook-id': id, 'webhook-timestamp': timestamp,
                      'webhook-signature': fourth });
    process.stdout.write('valid\n');
  } catch (e) {
    process.stderr.write(String(e) + '\n');
    process.exit(1);
  }
}
)js";

class WebhooksStandardLibTest : public WebhookCliTest {
 protected:
  void SetUp() override {
    WebhookCliTest::SetUp();
    module_ = InstallStandardWebhooks();
    WriteFile(dir_ / "sw.cjs", kNodeScript);
  }

  // The package's directory, installed with npm into the build directory unless it is there;
  // under a file lock, since ctest may run these tests in parallel processes.
  std::string InstallStandardWebhooks() {
    const fs::path prefix = fs::path(CM_BINARY_DIR) / "npm-standardwebhooks";
    const fs::path module = prefix / "node_modules" / "standardwebhooks";
    fs::create_directories(prefix);
    const int lock = ::open((prefix / ".lock").c_str(), O_RDWR | O_CREAT, 0644);
    EXPECT_GE(lock, 0);
    ::flock(lock, LOCK_EX);
    if (!fs::exists(module / "package.json") ||
        ReadFile(module / "package.json").find("\"version\": \"1.1.1\"") == std::string::npos) {
      const Ran npm = RunProgram({"npm", "install", "--prefix", prefix.string(), "--no-audit",
                                  "--no-fund", kStandardWebhooksPackage},
                                 dir_, "", {}, std::chrono::seconds(300));
      EXPECT_EQ(npm.code, 0) << "`npm install " << kStandardWebhooksPackage
                             << "` failed (is npm installed? ops/bootstrap installs it): "
                             << npm.err << npm.out;
    }
    ::close(lock);
    return module.string();
  }

  Ran Node(std::vector<std::string> args) {
    args.insert(args.begin(), {"node", (dir_ / "sw.cjs").string(), module_});
    return RunProgram(args, dir_, "");
  }

  std::string module_;
};

TEST_F(WebhooksStandardLibTest, NodeLibraryVerifiesWhatCmstreamSigns) {
  ASSERT_TRUE(fs::exists(fs::path(module_) / "package.json")) << "standardwebhooks is missing";
  const std::string secret = webhooks::NewWebhookSecret();
  // Non-ASCII text and a newline: both sides must sign the same UTF-8 bytes.
  const std::string body = "{\"name\": \"Zo\xc3\xab \xe2\x9c\x93\", \"n\": 1}\n";
  const fs::path file = Body("body.json", body);
  auto h = Sign(secret, "msg_node_1", body);
  ASSERT_EQ(h.size(), 3u);
  const Ran ok = Node({"verify", secret, h["webhook-id"], h["webhook-timestamp"],
                       h["webhook-signature"], file.string()});
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out, "valid\n");

  const fs::path tampered = Body("tampered.json", "{\"name\": \"Zoe\", \"n\": 1}\n");
  const Ran bad = Node({"verify", secret, h["webhook-id"], h["webhook-timestamp"],
                        h["webhook-signature"], tampered.string()});
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.err, HasSubstr("No matching signature"));
}

TEST_F(WebhooksStandardLibTest, CmstreamVerifiesWhatTheNodeLibrarySigns) {
  ASSERT_TRUE(fs::exists(fs::path(module_) / "package.json")) << "standardwebhooks is missing";
  // The reference vector, signed by the library, is what cmstream signs.
  const fs::path reference = Body("reference.json", R"({"test": 2432232314})");
  const Ran vector = Node({"sign", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                           "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", reference.string()});
  EXPECT_EQ(vector.code, 0) << vector.err;
  EXPECT_EQ(vector.out, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\n");

  const std::string secret = webhooks::NewWebhookSecret();
  const std::string body = "{\"name\": \"Zo\xc3\xab \xe2\x9c\x93\", \"n\": 2}";
  const fs::path file = Body("body.json", body);
  const std::string ts = std::to_string(topology::WallClockMs() / 1000);
  const Ran node_signed = Node({"sign", secret, "msg_node_2", ts, file.string()});
  ASSERT_EQ(node_signed.code, 0) << node_signed.err;
  const std::string signature = node_signed.out.substr(0, node_signed.out.find('\n'));
  const std::vector<std::string> verify{"verify", "--secret",    secret,
                                        "--id",   "msg_node_2",  "--timestamp",
                                        ts,       "--signature", signature};
  const Ran ok = Cmstream(verify, body);
  EXPECT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(ok.out, "valid\n");
  const Ran bad = Cmstream(verify, body + " ");
  EXPECT_EQ(bad.code, 1);
  EXPECT_EQ(bad.err, "cmstream webhook verify: no matching signature\n");
}

}  // namespace
}  // namespace cm
