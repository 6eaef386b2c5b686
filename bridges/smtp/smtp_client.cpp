#include "bridges/smtp/smtp_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>

#include "topology/common/crypto.h"
#include "topology/common/wall_clock.h"

namespace cm::smtp {

namespace {

bool HasLineBreak(const std::string& s) { return s.find_first_of("\r\n") != std::string::npos; }

bool Ascii(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// RFC 2047 encoded words of at most 45 bytes of UTF-8 each (60 characters of base64), split
// between characters, for a header value that is not ASCII.
std::string EncodeHeaderValue(const std::string& value) {
  if (Ascii(value)) return value;
  std::string out;
  size_t i = 0;
  while (i < value.size()) {
    size_t end = std::min(value.size(), i + 45);
    while (end < value.size() && end > i + 1 &&
           (static_cast<unsigned char>(value[end]) & 0xC0) == 0x80)
      --end;  // not inside a character
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + topology::Base64Encode(value.substr(i, end - i)) + "?=";
    i = end;
  }
  return out;
}

std::string RfcDate(int64_t ms) {
  const time_t secs = static_cast<time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

// CRLF line ends, and base64 in lines of 76 when the text is not ASCII (no 8BITMIME needed).
std::string Body(const std::string& text, bool& base64) {
  std::string crlf;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') continue;
    if (text[i] == '\n') {
      crlf += "\r\n";
    } else {
      crlf += text[i];
    }
  }
  if (crlf.size() < 2 || crlf.compare(crlf.size() - 2, 2, "\r\n") != 0) crlf += "\r\n";
  // SMTP lines end at 998 bytes (RFC 5321 §4.5.3.1.6): a longer line goes out in base64 too.
  size_t longest = 0;
  for (size_t start = 0, end; start < crlf.size(); start = end + 2) {
    end = crlf.find("\r\n", start);
    if (end == std::string::npos) end = crlf.size();
    longest = std::max(longest, end - start);
  }
  base64 = !Ascii(crlf) || longest > 998;
  if (!base64) return crlf;
  const std::string encoded = topology::Base64Encode(crlf);
  std::string out;
  for (size_t i = 0; i < encoded.size(); i += 76) out += encoded.substr(i, 76) + "\r\n";
  return out;
}

void InitCurlOnce() {
  static std::once_flag once;  // curl_global_init must run once before any handle
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Upload {
  const std::string& data;
  size_t offset = 0;
};

size_t ReadUpload(char* buffer, size_t size, size_t count, void* user) {
  auto* upload = static_cast<Upload*>(user);
  const size_t n = std::min(size * count, upload->data.size() - upload->offset);
  std::memcpy(buffer, upload->data.data() + upload->offset, n);
  upload->offset += n;
  return n;
}

}  // namespace

SmtpClient::SmtpClient(SmtpOptions options) : options_(std::move(options)) { InitCurlOnce(); }

std::string SmtpClient::AddressOf(const std::string& mailbox) {
  const size_t open = mailbox.rfind('<');
  const size_t close = mailbox.rfind('>');
  if (open != std::string::npos && close != std::string::npos && close > open)
    return mailbox.substr(open + 1, close - open - 1);
  return mailbox;
}

state::Status SmtpClient::Format(const Message& m, int64_t date_ms, std::string& out) {
  for (const std::string* v : {&m.from, &m.to, &m.subject, &m.message_id}) {
    if (HasLineBreak(*v))
      return state::Status::InvalidArgument("a mail header may not contain a line break");
  }
  for (const auto& [name, value] : m.headers) {
    if (HasLineBreak(name) || HasLineBreak(value) || name.empty() ||
        name.find(':') != std::string::npos || name.find(' ') != std::string::npos)
      return state::Status::InvalidArgument("mail header '" + name + "' is not usable");
  }
  const std::string to = AddressOf(m.to);
  if (to.empty() || AddressOf(m.from).empty())
    return state::Status::InvalidArgument("a mail needs a From and a To address");
  bool base64 = false;
  const std::string body = Body(m.text, base64);
  out.clear();
  out += "Date: " + RfcDate(date_ms) + "\r\n";
  out += "From: " + m.from + "\r\n";
  out += "To: " + m.to + "\r\n";
  out += "Subject: " + EncodeHeaderValue(m.subject) + "\r\n";
  if (!m.message_id.empty()) out += "Message-ID: <" + m.message_id + ">\r\n";
  out += "MIME-Version: 1.0\r\n";
  out += "Content-Type: text/plain; charset=utf-8\r\n";
  out += std::string("Content-Transfer-Encoding: ") + (base64 ? "base64" : "7bit") + "\r\n";
  for (const auto& [name, value] : m.headers)
    out += name + ": " + EncodeHeaderValue(value) + "\r\n";
  out += "\r\n";
  out += body;
  return state::Status::OK();
}

state::Status SmtpClient::Send(const Message& m) const {
  std::string wire;
  if (auto s = Format(m, topology::WallClockMs(), wire); !s.ok()) return s;
  const std::string from = "<" + AddressOf(m.from) + ">";
  const std::string to = "<" + AddressOf(m.to) + ">";

  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) return state::Status::Unavailable("smtp: curl_easy_init failed");
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> rcpt(curl_slist_append(nullptr, to.c_str()),
                                                          curl_slist_free_all);
  Upload upload{wire};
  char error[CURL_ERROR_SIZE] = {0};
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(h, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt.get());
  curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(h, CURLOPT_READFUNCTION, ReadUpload);
  curl_easy_setopt(h, CURLOPT_READDATA, &upload);
  curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(wire.size()));
  // STARTTLS when offered; smtps:// is TLS from the start whatever this says.
  curl_easy_setopt(h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
  if (!options_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // called from worker threads
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OK) return state::Status::OK();
  long reply = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply);
  // The URL may hold a password: the message names neither.
  std::string why = error[0] != '\0' ? std::string(error) : std::string(curl_easy_strerror(rc));
  if (reply > 0) why += " (SMTP reply " + std::to_string(reply) + ")";
  return state::Status::Unavailable("smtp: " + why);
}

}  // namespace cm::smtp
