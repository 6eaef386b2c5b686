#include "topology/query/route_pattern.h"

#include <stdexcept>

namespace cm::topology {

RoutePattern::RoutePattern(std::string_view pattern) : pattern_(pattern) {
  for (size_t i = 0; i < pattern.size();) {
    if (pattern[i] == '{') {
      const size_t end = pattern.find('}', i);
      if (end == std::string_view::npos || end == i + 1)
        throw std::invalid_argument("route pattern '" + pattern_ + "': {name} expected");
      names_.emplace_back(pattern.substr(i + 1, end - i - 1));
      regex_ += "([^/]+)";
      i = end + 1;
    } else {
      if (std::string_view("().[]{}*+?^$\\|").find(pattern[i]) != std::string_view::npos)
        regex_ += '\\';
      regex_ += pattern[i++];
    }
  }
  compiled_ = std::regex(regex_);
}

std::optional<std::map<std::string, std::string>> RoutePattern::Match(
    const std::string& path) const {
  std::smatch m;
  if (!std::regex_match(path, m, compiled_)) return std::nullopt;
  std::map<std::string, std::string> params;
  for (size_t i = 0; i < names_.size() && i + 1 < m.size(); ++i) params[names_[i]] = m[i + 1].str();
  return params;
}

}  // namespace cm::topology
