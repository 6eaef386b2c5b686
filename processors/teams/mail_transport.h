#pragma once

#include <string>
#include <utility>
#include <vector>

#include "state/status.h"

namespace cm::teams {

// One email as the invitation mailer composes it; the transport formats and delivers it.
struct Mail {
  std::string from;        // an address, optionally "Name <address>"
  std::string to;          // one address
  std::string subject;     // UTF-8, one line
  std::string text;        // UTF-8 plain text, lines separated by '\n'
  std::string message_id;  // without angle brackets: the same for every attempt of one mail
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// Delivers mail (SMTP in production: processors/cloudmatrix wires bridges/smtp in). Called on
// the MailSender's threads, never on a stream thread, so it may block up to its own timeouts.
// OK means the server took the message (SMTP 250 after DATA); any error may be retried.
class MailTransport {
 public:
  virtual ~MailTransport() = default;
  virtual state::Status Send(const Mail& mail) = 0;
};

}  // namespace cm::teams
