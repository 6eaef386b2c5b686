#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cm::topology {

// A route's path pattern, "/v1/teams/{id}/members": segments between '/' that are literal
// text or a whole {name} capture, which matches one non-empty segment. HttpServer dispatches
// every request with Match, in registration order, and so does the fuzz target of
// tests/fuzz. Matching compares segments; no regex runs (std::regex over every route was most
// of a small request's routing time).
class RoutePattern {
 public:
  // Throws std::invalid_argument for a '{' without '}', an empty name, or a capture that is
  // not a whole segment ("/v1/{id}.csv"): patterns are code.
  explicit RoutePattern(std::string_view pattern);

  const std::string& pattern() const { return pattern_; }
  const std::vector<std::string>& names() const { return names_; }
  // The captures by name when `path` matches the whole pattern, else nullopt.
  std::optional<std::map<std::string, std::string>> Match(std::string_view path) const;

 private:
  struct Segment {
    std::string text;  // the literal, or the capture's name
    bool capture = false;
  };
  std::string pattern_;
  std::vector<Segment> segments_;
  std::vector<std::string> names_;
};

}  // namespace cm::topology
