#pragma once

// The request line and headers of one HTTP/1.1 request, checked against the server's limits
// before any worker thread or the HTTP library sees the request. The connection layer reads
// a head off the socket without a thread, checks it here, and refuses with a JSON 4xx what
// must not reach a handler: an oversized line or header section, a body framed two ways,
// a Content-Length that is not a number or is over the body limit, a body that is not JSON.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cm::topology {

struct RequestHeadLimits {
  size_t max_uri_bytes = 8 << 10;      // request line; longer is 414
  size_t max_header_bytes = 32 << 10;  // request line and headers together; more is 431
  size_t max_header_count = 100;       // more is 431
  size_t max_body_bytes = 1 << 20;     // a larger Content-Length is 413
};

struct RequestHead {
  std::string method;
  std::string path;       // the target without its query
  size_t head_bytes = 0;  // through the blank line that ends the headers
  std::optional<size_t> content_length;
  bool chunked = false;
  bool expect_continue = false;
};

// Why a request is refused before it is served: an HTTP status and the error envelope's code
// and message (DESIGN.md §6).
struct HeadRefusal {
  int status = 400;
  std::string code;
  std::string message;
};

struct HeadParse {
  enum class Kind { kIncomplete, kComplete, kRefused };
  Kind kind = Kind::kIncomplete;
  RequestHead head;
  HeadRefusal refusal;
};

// Looks for a complete head at the start of `buffer` (what has arrived on the connection so
// far). kIncomplete means wait for more bytes; it is never answered once the buffer is over a
// limit, so a client cannot make the server buffer more than the limits allow.
HeadParse ParseRequestHead(std::string_view buffer, const RequestHeadLimits& limits);

}  // namespace cm::topology
