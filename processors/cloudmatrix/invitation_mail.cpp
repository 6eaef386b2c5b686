#include "processors/cloudmatrix/invitation_mail.h"

namespace cm::cloudmatrix {

state::Status SmtpMailTransport::Send(const teams::Mail& mail) {
  return client_.Send({.from = mail.from,
                       .to = mail.to,
                       .subject = mail.subject,
                       .text = mail.text,
                       .message_id = mail.message_id,
                       .headers = mail.headers});
}

state::Result<std::shared_ptr<teams::MailSender>> StartSmtpMailSender(const std::string& smtp_url) {
  if (smtp_url.rfind("smtp://", 0) != 0 && smtp_url.rfind("smtps://", 0) != 0)
    return state::Status::InvalidArgument(
        "--smtp-url must be smtp://[user:password@]host[:port] or smtps://...");
  smtp::SmtpOptions options;
  options.url = smtp_url;
  return std::make_shared<teams::MailSender>(std::make_unique<SmtpMailTransport>(options));
}

}  // namespace cm::cloudmatrix
