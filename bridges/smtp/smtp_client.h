#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "state/status.h"

namespace cm::smtp {

struct SmtpOptions {
  // smtp://host[:port] (STARTTLS when the server offers it) or smtps://host[:port] (implicit
  // TLS); user:password@ before the host logs in (AUTH).
  std::string url;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};  // the whole conversation
  std::string ca_file;  // PEM CAs for TLS; empty: the system's
};

struct Message {
  std::string from;        // "address" or "Name <address>"
  std::string to;          // one address
  std::string subject;     // UTF-8, one line
  std::string text;        // UTF-8, '\n' line ends
  std::string message_id;  // without angle brackets
  std::vector<std::pair<std::string, std::string>> headers;
};

// Sends one message per call over a connection of its own; thread-safe (no shared handle).
class SmtpClient {
 public:
  explicit SmtpClient(SmtpOptions options);

  // OK once the server accepted the message (250 after DATA). InvalidArgument when the message
  // cannot be sent as it is (a header with a line break, an unusable address); Unavailable for
  // every failure of the server or the network, with the SMTP reply code when there was one.
  state::Status Send(const Message& message) const;

  // The message as it goes on the wire: headers, a blank line, the body, CRLF line ends.
  // `date_ms` is the Date header's time. InvalidArgument for what Send refuses.
  static state::Status Format(const Message& message, int64_t date_ms, std::string& out);
  // The address of "Name <address>" (or the text itself).
  static std::string AddressOf(const std::string& mailbox);

 private:
  SmtpOptions options_;
};

}  // namespace cm::smtp
