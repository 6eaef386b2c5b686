// The message bridges/smtp puts on the wire: RFC 5322 headers with the Message-ID, RFC 2047
// subjects that are not ASCII, base64 bodies when they are not ASCII or have overlong lines,
// and refusals of header injection. Delivery itself is tested against a real SMTP server
// (TeamsSmtpTest).
#include "bridges/smtp/smtp_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "topology/common/crypto.h"

namespace cm::smtp {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Message Sample() {
  return {.from = "Teams <teams@example.com>",
          .to = "bob@example.com",
          .subject = "Invitation to join the team Core",
          .text = "line one\n.line two\n",
          .message_id = "inv_1@cmstream",
          .headers = {{"X-Cmstream-Invitation", "inv_1"}}};
}

TEST(SmtpClientFormat, HeadersThenABlankLineThenTheBodyWithCrlf) {
  std::string wire;
  ASSERT_TRUE(SmtpClient::Format(Sample(), 1'800'000'000'000, wire).ok());
  EXPECT_THAT(wire, HasSubstr("Date: Fri, 15 Jan 2027 08:00:00 +0000\r\n"));
  EXPECT_THAT(wire, HasSubstr("From: Teams <teams@example.com>\r\n"));
  EXPECT_THAT(wire, HasSubstr("To: bob@example.com\r\n"));
  EXPECT_THAT(wire, HasSubstr("Subject: Invitation to join the team Core\r\n"));
  EXPECT_THAT(wire, HasSubstr("Message-ID: <inv_1@cmstream>\r\n"));
  EXPECT_THAT(wire, HasSubstr("Content-Transfer-Encoding: 7bit\r\n"));
  EXPECT_THAT(wire, HasSubstr("X-Cmstream-Invitation: inv_1\r\n"));
  // Dot-stuffing is libcurl's (it escapes a line that starts with '.'): the text stays as is.
  EXPECT_THAT(wire, HasSubstr("\r\n\r\nline one\r\n.line two\r\n"));
  EXPECT_EQ(SmtpClient::AddressOf("Teams <teams@example.com>"), "teams@example.com");
  EXPECT_EQ(SmtpClient::AddressOf("teams@example.com"), "teams@example.com");
}

TEST(SmtpClientFormat, NonAsciiSubjectsAndBodiesAreEncoded) {
  Message m = Sample();
  m.subject = "Einladung: Ünïcode-Team";
  m.text = "Grüße\n";
  std::string wire;
  ASSERT_TRUE(SmtpClient::Format(m, 0, wire).ok());
  EXPECT_THAT(wire, HasSubstr("Subject: =?UTF-8?B?" + topology::Base64Encode(m.subject) + "?="));
  EXPECT_THAT(wire, HasSubstr("Content-Transfer-Encoding: base64\r\n"));
  EXPECT_THAT(wire, HasSubstr(topology::Base64Encode("Grüße\r\n")));
  EXPECT_THAT(wire, Not(HasSubstr("Grüße")));
}

TEST(SmtpClientFormat, AnOverlongLineGoesOutInBase64) {
  Message m = Sample();
  m.text = std::string(1500, 'a') + "\n";
  std::string wire;
  ASSERT_TRUE(SmtpClient::Format(m, 0, wire).ok());
  EXPECT_THAT(wire, HasSubstr("Content-Transfer-Encoding: base64\r\n"));
  for (size_t start = 0, end; start < wire.size(); start = end + 2) {
    end = wire.find("\r\n", start);
    if (end == std::string::npos) end = wire.size();
    EXPECT_LE(end - start, 998u);
  }
}

TEST(SmtpClientFormat, LineBreaksInHeadersAreRefused) {
  std::string wire;
  for (auto change : {+[](Message& m) { m.subject = "x\r\nBcc: eve@example.com"; },
                      +[](Message& m) { m.to = "bob@example.com\nBcc: eve@example.com"; },
                      +[](Message& m) { m.from = "a@b\r"; },
                      +[](Message& m) {
                        m.headers = {{"X-A", "1\r\nBcc: eve@example.com"}};
                      },
                      +[](Message& m) {
                        m.headers = {{"X-A: b", "1"}};
                      }}) {
    Message m = Sample();
    change(m);
    auto s = SmtpClient::Format(m, 0, wire);
    EXPECT_EQ(s.code(), state::Status::Code::kInvalidArgument) << s.ToString();
  }
}

TEST(SmtpClientSend, AServerThatIsNotThereIsUnavailable) {
  SmtpClient client({.url = "smtp://127.0.0.1:1",
                     .connect_timeout = std::chrono::seconds(2),
                     .timeout = std::chrono::seconds(5),
                     .ca_file = ""});
  auto s = client.Send(Sample());
  EXPECT_EQ(s.code(), state::Status::Code::kUnavailable) << s.ToString();
  EXPECT_THAT(s.message(), HasSubstr("smtp:"));
}

}  // namespace
}  // namespace cm::smtp
