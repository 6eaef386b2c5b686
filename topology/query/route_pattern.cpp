#include "topology/query/route_pattern.h"

#include <stdexcept>

namespace cm::topology {

namespace {

// The segments of a path: "/a/b" is "", "a", "b"; "/a/" is "", "a", "".
std::vector<std::string_view> SplitSegments(std::string_view path) {
  std::vector<std::string_view> out;
  for (size_t start = 0;;) {
    const size_t slash = path.find('/', start);
    out.push_back(path.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) return out;
    start = slash + 1;
  }
}

}  // namespace

RoutePattern::RoutePattern(std::string_view pattern) : pattern_(pattern) {
  for (std::string_view segment : SplitSegments(pattern)) {
    const size_t open = segment.find('{');
    const size_t close = segment.find('}');
    if (open == std::string_view::npos && close == std::string_view::npos) {
      segments_.push_back({std::string(segment), false});
      continue;
    }
    if (open != 0 || close != segment.size() - 1 || segment.size() < 3)
      throw std::invalid_argument("route pattern '" + pattern_ +
                                  "': a capture is a whole segment, {name}");
    names_.emplace_back(segment.substr(1, segment.size() - 2));
    segments_.push_back({names_.back(), true});
  }
}

std::optional<std::map<std::string, std::string>> RoutePattern::Match(std::string_view path) const {
  size_t pos = 0;
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (i > 0) {
      if (pos >= path.size() || path[pos] != '/') return std::nullopt;
      ++pos;
    }
    const Segment& s = segments_[i];
    if (s.capture) {
      const size_t end = std::min(path.find('/', pos), path.size());
      if (end == pos) return std::nullopt;
      pos = end;
    } else {
      if (path.compare(pos, s.text.size(), s.text) != 0) return std::nullopt;
      pos += s.text.size();
    }
  }
  if (pos != path.size()) return std::nullopt;
  // Matched: a second pass takes the captures (most attempts fail, and allocate nothing).
  std::map<std::string, std::string> params;
  pos = 0;
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (i > 0) ++pos;
    const Segment& s = segments_[i];
    if (s.capture) {
      const size_t end = std::min(path.find('/', pos), path.size());
      params[s.text] = std::string(path.substr(pos, end - pos));
      pos = end;
    } else {
      pos += s.text.size();
    }
  }
  return params;
}

}  // namespace cm::topology
