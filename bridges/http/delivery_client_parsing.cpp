// DeliveryClient's parsers: the endpoint URL and the Retry-After header.
#include <charconv>
#include <ctime>
#include <limits>

#include "bridges/http/ascii.h"
#include "bridges/http/delivery_client.h"

namespace cm::http {

state::Result<ParsedUrl> DeliveryClient::ParseUrl(std::string_view url) {
  auto bad = [](std::string why) { return state::Status::InvalidArgument(std::move(why)); };
  if (url.size() > 8192) return bad("the URL is longer than 8192 characters");
  for (char c : url) {
    auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f) return bad("the URL contains a blank or control character");
  }
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return bad("not an absolute http(s) URL");
  ParsedUrl parsed;
  std::string_view scheme = url.substr(0, scheme_end);
  if (EqualsIgnoreCase(scheme, "https")) {
    parsed.https = true;
    parsed.port = 443;
  } else if (EqualsIgnoreCase(scheme, "http")) {
    parsed.https = false;
    parsed.port = 80;
  } else {
    return bad("the scheme must be https or http");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos)
    return bad("credentials in the URL are not allowed");

  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 address");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("unexpected text after the IPv6 address");
      has_port = true;
      port_text = after.substr(1);
    }
    if (host.find('%') != std::string_view::npos) return bad("IPv6 zones are not allowed");
    std::optional<IpAddress> literal = IpAddress::Parse(host);
    if (!literal || literal->is_v4()) return bad("not an IPv6 address in brackets");
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (host.empty()) return bad("the URL has no host");
    if (host.size() > 253) return bad("the host name is too long");
    for (char c : host) {
      auto byte = static_cast<unsigned char>(c);
      if (!std::isalnum(byte) && c != '.' && c != '-' && c != '_')
        return bad("the host name has a character other than letters, digits, '.', '-', '_'");
    }
  }
  parsed.host.reserve(host.size());
  for (char c : host) parsed.host += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (has_port) {
    int port = 0;
    auto [end, error] =
        std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || port_text.size() > 5 || error != std::errc() ||
        end != port_text.data() + port_text.size() || port < 1 || port > 65535)
      return bad("the port must be 1..65535");
    parsed.port = port;
  }

  std::string_view target = tail.substr(0, tail.find('#'));
  if (target.empty() || target.front() == '?')
    parsed.target.assign(1, '/');  // not = "/": GCC 12's false -Wrestrict (PR 105329)
  // Raw non-ASCII bytes are not valid in a request line; percent-encoded they are.
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : target) {
    auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x80) {
      parsed.target += '%';
      parsed.target += kHex[byte >> 4];
      parsed.target += kHex[byte & 0xf];
    } else {
      parsed.target += c;
    }
  }
  return parsed;
}

std::optional<int64_t> DeliveryClient::ParseRetryAfter(std::string_view value, int64_t now_ms) {
  value = TrimBlanks(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1000;
    int64_t seconds = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (error == std::errc::result_out_of_range || seconds > kMaxSeconds) seconds = kMaxSeconds;
    return seconds * 1000;
  }
  // HTTP-date (RFC 9110 §5.6.7): IMF-fixdate, and the obsolete RFC 850 and asctime forms.
  std::string text(value);
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    std::tm tm{};
    const char* end = strptime(text.c_str(), format, &tm);
    if (end == nullptr || *end != '\0') continue;
    time_t seconds = timegm(&tm);
    if (seconds == static_cast<time_t>(-1)) continue;
    return std::max<int64_t>(0, static_cast<int64_t>(seconds) * 1000 - now_ms);
  }
  return std::nullopt;
}

}  // namespace cm::http
