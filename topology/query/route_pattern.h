#pragma once

#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace cm::topology {

// A route's path pattern, "/v1/teams/{id}/members": literal text and {name} captures of one
// non-empty path segment each. HttpServer hands regex() to cpp-httplib, which matches it
// against the decoded request path with std::regex_match, and Match does the very same (for
// 405 answers and for the fuzz target of tests/fuzz), so both agree on what a route matches.
class RoutePattern {
 public:
  // Throws std::invalid_argument for a '{' without '}' or an empty name: patterns are code.
  explicit RoutePattern(std::string_view pattern);

  const std::string& pattern() const { return pattern_; }
  // ECMAScript regex with one group per {name}, regex metacharacters of literals escaped.
  const std::string& regex() const { return regex_; }
  const std::vector<std::string>& names() const { return names_; }
  // The captures by name when `path` matches the whole pattern, else nullopt.
  std::optional<std::map<std::string, std::string>> Match(const std::string& path) const;

 private:
  std::string pattern_;
  std::string regex_;
  std::vector<std::string> names_;
  std::regex compiled_;
};

}  // namespace cm::topology
