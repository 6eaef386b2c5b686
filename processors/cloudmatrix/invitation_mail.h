#pragma once

// Invitation emails for `cmstream run` (README "Teams"): the SMTP bridge as the teams
// application's MailTransport, and the MailSender the flags describe.
#include <chrono>
#include <memory>
#include <string>

#include "bridges/smtp/smtp_client.h"
#include "processors/teams/mail_sender.h"
#include "processors/teams/mail_transport.h"

namespace cm::cloudmatrix {

class SmtpMailTransport final : public teams::MailTransport {
 public:
  explicit SmtpMailTransport(smtp::SmtpOptions options) : client_(std::move(options)) {}
  state::Status Send(const teams::Mail& mail) override;

 private:
  smtp::SmtpClient client_;
};

// A started MailSender delivering to `smtp_url`; InvalidArgument when the URL is not smtp://
// or smtps://.
state::Result<std::shared_ptr<teams::MailSender>> StartSmtpMailSender(const std::string& smtp_url);

}  // namespace cm::cloudmatrix
