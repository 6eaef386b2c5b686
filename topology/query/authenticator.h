#pragma once

#include "state/status.h"
#include "topology/query/principal.h"

namespace cm::topology {

struct HttpRequest;

// Turns a request's credential into a principal (an application supplies it: API keys, for
// CloudMatrix). Any failure is answered 401 with the status's message, so an implementation
// must give the same message for an unknown key and a wrong one.
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual state::Result<Principal> Authenticate(const HttpRequest& request) const = 0;
};

}  // namespace cm::topology
