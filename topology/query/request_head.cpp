#include "topology/query/request_head.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

namespace cm::topology {

namespace {

HeadParse Refuse(int status, std::string code, std::string message) {
  HeadParse p;
  p.kind = HeadParse::Kind::kRefused;
  p.refusal = {status, std::move(code), std::move(message)};
  return p;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110 token characters, for header names and methods.
bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  });
}

// JSON bodies only: application/json or any application/*+json (CloudEvents' structured
// mode), with parameters such as charset allowed.
bool IsJsonMediaType(std::string_view value) {
  std::string type = Lower(Trim(value.substr(0, value.find(';'))));
  if (type == "application/json") return true;
  return type.rfind("application/", 0) == 0 && type.size() > 5 &&
         type.compare(type.size() - 5, 5, "+json") == 0;
}

}  // namespace

HeadParse ParseRequestHead(std::string_view buffer, const RequestHeadLimits& limits) {
  // The request line first: 414 as soon as it is over the limit, complete or not.
  size_t line_end = buffer.find('\n');
  if (line_end == std::string_view::npos) {
    if (buffer.size() > limits.max_uri_bytes)
      return Refuse(
          414, "uri_too_long",
          "the request line is longer than " + std::to_string(limits.max_uri_bytes) + " bytes");
    return {};
  }
  if (line_end > limits.max_uri_bytes)
    return Refuse(
        414, "uri_too_long",
        "the request line is longer than " + std::to_string(limits.max_uri_bytes) + " bytes");

  // Then the header section, up to the first empty line (CRLF, or a bare LF as RFC 9112 §2.2
  // allows a server to accept).
  size_t pos = line_end + 1;
  size_t count = 0;
  std::vector<std::string_view> fields;
  for (;;) {
    size_t end = buffer.find('\n', pos);
    if (end == std::string_view::npos) {
      if (buffer.size() > limits.max_header_bytes)
        return Refuse(431, "headers_too_large",
                      "the request headers are larger than " +
                          std::to_string(limits.max_header_bytes) + " bytes");
      return {};
    }
    if (end + 1 > limits.max_header_bytes)
      return Refuse(431, "headers_too_large",
                    "the request headers are larger than " +
                        std::to_string(limits.max_header_bytes) + " bytes");
    std::string_view line = buffer.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = end + 1;
    if (line.empty()) break;
    if (++count > limits.max_header_count)
      return Refuse(431, "too_many_headers",
                    "more than " + std::to_string(limits.max_header_count) + " request headers");
    fields.push_back(line);
  }

  HeadParse p;
  p.kind = HeadParse::Kind::kComplete;
  RequestHead& head = p.head;
  head.head_bytes = pos;

  std::string_view request_line = buffer.substr(0, line_end);
  if (!request_line.empty() && request_line.back() == '\r') request_line.remove_suffix(1);
  size_t sp1 = request_line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Refuse(400, "bad_request", "malformed request line");
  std::string_view method = request_line.substr(0, sp1);
  std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = request_line.substr(sp2 + 1);
  if (!IsToken(method) || target.empty() || target.front() != '/' ||
      (version != "HTTP/1.1" && version != "HTTP/1.0"))
    return Refuse(400, "bad_request", "malformed request line");
  head.method = std::string(method);
  head.path = std::string(target.substr(0, target.find('?')));

  std::optional<std::string> content_type;
  for (std::string_view field : fields) {
    size_t colon = field.find(':');
    if (colon == std::string_view::npos || !IsToken(field.substr(0, colon)))
      return Refuse(400, "bad_request", "malformed header line");
    std::string name = Lower(field.substr(0, colon));
    std::string_view value = Trim(field.substr(colon + 1));
    if (name == "content-length") {
      // Digits only (no sign, no spaces, no hex): RFC 9110 §8.6. Repeated values must agree.
      size_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size() ||
          !std::isdigit(static_cast<unsigned char>(value.front())))
        return Refuse(400, "bad_request", "Content-Length is not a number");
      if (head.content_length && *head.content_length != n)
        return Refuse(400, "bad_request", "conflicting Content-Length headers");
      head.content_length = n;
    } else if (name == "transfer-encoding") {
      if (Lower(value) != "chunked")
        return Refuse(400, "bad_request", "only the chunked transfer coding is supported");
      head.chunked = true;
    } else if (name == "expect") {
      head.expect_continue = Lower(value) == "100-continue";
    } else if (name == "content-type") {
      content_type = std::string(value);
    }
  }
  // A body framed two ways is the request-smuggling shape (RFC 9112 §6.3): refuse it.
  if (head.chunked && head.content_length)
    return Refuse(400, "bad_request", "both Content-Length and Transfer-Encoding are set");
  if (head.content_length && *head.content_length > limits.max_body_bytes)
    return Refuse(
        413, "payload_too_large",
        "the request body is larger than " + std::to_string(limits.max_body_bytes) + " bytes");
  bool has_body = head.chunked || (head.content_length && *head.content_length > 0);
  if (has_body && !(content_type && IsJsonMediaType(*content_type)))
    return Refuse(415, "unsupported_media_type",
                  "a request body must be JSON (Content-Type: application/json)");
  return p;
}

}  // namespace cm::topology
