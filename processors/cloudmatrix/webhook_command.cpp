#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "processors/cloudmatrix/subcommand.h"
#include "processors/webhooks/webhook_signature.h"
#include "topology/common/wall_clock.h"

namespace cm::cloudmatrix {

namespace {

// The body exactly as it is sent: every byte of the file (or of standard input), no trailing
// newline added or removed, since the signature covers them all.
bool ReadBody(const std::string& body_file, std::string& body) {
  if (body_file.empty() || body_file == "-") {
    body.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return !std::cin.bad();
  }
  std::ifstream in(body_file, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  body = s.str();
  return !in.bad();
}

// `webhook sign` prints the Standard Webhooks headers of a body, `webhook verify` checks them,
// so an endpoint can be tried by hand (curl -H ...) and a receiver's verification tested.
class WebhookCommand final : public Subcommand {
 public:
  explicit WebhookCommand(CLI::App& app)
      : Subcommand(app.add_subcommand(
            "webhook", "sign a webhook body or verify its signature (Standard Webhooks)")) {
    cli_->require_subcommand(1);
    sign_ = cli_->add_subcommand(
        "sign",
        "print the webhook-id, webhook-timestamp and webhook-signature headers of a body "
        "(from --body-file or standard input)");
    AddCommonFlags(sign_);
    timestamp_flag_ =
        sign_->add_option("--timestamp", timestamp_, "unix seconds to sign with (default: now)");
    verify_ = cli_->add_subcommand(
        "verify",
        "check a body's webhook signature: prints `valid` and exits 0, or says why not on "
        "stderr and exits 1");
    AddCommonFlags(verify_);
    verify_->add_option("--timestamp", timestamp_header_, "the webhook-timestamp header")
        ->required();
    verify_
        ->add_option("--signature", signature_,
                     "the webhook-signature header (space-separated v1,<base64> entries)")
        ->required();
    verify_
        ->add_option("--tolerance", tolerance_, "seconds the timestamp may be from now, either way")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
  }

  int Execute() override { return *sign_ ? Sign() : Verify(); }

 private:
  void AddCommonFlags(CLI::App* cmd) {
    cmd->add_option("--secret", secret_, "the endpoint's secret, whsec_<base64>")
        ->envname("CM_WEBHOOK_SECRET")
        ->required();
    cmd->add_option("--id", msg_id_, "the message id (webhook-id), e.g. msg_...")->required();
    cmd->add_option("--body-file", body_file_, "the body (default: standard input)");
  }

  int Sign() {
    auto key = webhooks::DecodeWebhookSecret(secret_);
    if (!key.ok()) return Fail("sign", key.status().message(), 2);
    if (msg_id_.empty()) return Fail("sign", "--id must not be empty", 2);
    if (timestamp_flag_->count() == 0) timestamp_ = topology::WallClockMs() / 1000;
    if (timestamp_ < 0) return Fail("sign", "--timestamp must be unix seconds (0 or more)", 2);
    std::string body;
    if (!ReadBody(body_file_, body)) return Fail("sign", "cannot read " + BodySource(), 2);
    std::cout << "webhook-id: " << msg_id_ << '\n'
              << "webhook-timestamp: " << timestamp_ << '\n'
              << "webhook-signature: " << webhooks::SignWebhook(*key, msg_id_, timestamp_, body)
              << '\n';
    return 0;
  }

  int Verify() {
    // A secret that is not whsec_<base64> is a mistake in the flags (2), not a message that
    // fails verification (1).
    if (auto key = webhooks::DecodeWebhookSecret(secret_); !key.ok())
      return Fail("verify", key.status().message(), 2);
    std::string body;
    if (!ReadBody(body_file_, body)) return Fail("verify", "cannot read " + BodySource(), 2);
    const auto status = webhooks::VerifyWebhook(secret_, msg_id_, timestamp_header_, signature_,
                                                body, topology::WallClockMs() / 1000, tolerance_);
    if (!status.ok()) return Fail("verify", status.message(), 1);
    std::cout << "valid\n";
    return 0;
  }

  std::string BodySource() const {
    return body_file_.empty() || body_file_ == "-" ? "the body from standard input"
                                                   : "--body-file " + body_file_;
  }

  static int Fail(const char* what, const std::string& why, int code) {
    std::cerr << "cmstream webhook " << what << ": " << why << '\n';
    return code;
  }

  CLI::App* sign_ = nullptr;
  CLI::App* verify_ = nullptr;
  CLI::Option* timestamp_flag_ = nullptr;
  std::string secret_;
  std::string msg_id_;
  std::string body_file_;
  int64_t timestamp_ = 0;
  std::string timestamp_header_;
  std::string signature_;
  int64_t tolerance_ = webhooks::kDefaultWebhookTolerance;
};

}  // namespace

std::unique_ptr<Subcommand> AddWebhookCommand(CLI::App& app) {
  return std::make_unique<WebhookCommand>(app);
}

}  // namespace cm::cloudmatrix
