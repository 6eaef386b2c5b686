#pragma once

#include <string>

namespace cm::postgres {

// The URL with connect_timeout=5 added unless it sets one: an unreachable server then fails a
// connection attempt in seconds instead of the TCP timeout.
inline std::string WithConnectTimeout(const std::string& url) {
  if (url.find("connect_timeout") != std::string::npos) return url;
  if (url.find("://") == std::string::npos) return url + " connect_timeout=5";  // key=value form
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "connect_timeout=5";
}

}  // namespace cm::postgres
