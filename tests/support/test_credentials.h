#pragma once

// The credentials every test cluster runs with: an admin API key (CM_ADMIN_KEY, written to the
// api-keys topic when an instance starts) and the cluster secret that signs forwarded requests.
// Fixed values, so separate processes of one test agree without passing them around.
#include <httplib.h>

#include <memory>
#include <string>

namespace cm::testing {

inline constexpr const char* kTestAdminKey =
    "cmk_0123456789abcdef_dGVzdC1hZG1pbi1rZXktZm9yLWNtc3Ry";
inline constexpr const char* kTestClusterSecret = "test-cluster-secret";

// A client of 127.0.0.1:port that sends the test admin key.
inline std::unique_ptr<httplib::Client> AdminClient(int port) {
  auto client = std::make_unique<httplib::Client>("127.0.0.1", port);
  client->set_bearer_token_auth(kTestAdminKey);
  return client;
}

}  // namespace cm::testing
