#pragma once

// cpp-httplib 0.11 listens with a backlog of 5. A burst of new connections (a pool of webhook
// senders opening theirs at once) overflows the accept queue, and the kernel resets some of
// them after the request went out, which a client rightly counts as a failed attempt (five in
// a row open an endpoint's circuit). Production receivers listen with a large backlog (nginx:
// 511), so the test and benchmark sinks do too.
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace cm::testing {

// Binds `server` to `host` and `port` (0: any free port) with SO_REUSEADDR (a port just probed
// free may have a closed connection in TIME_WAIT) in place of httplib's SO_REUSEPORT (which
// would let another listener share the port), then listens with SOMAXCONN on the socket httplib
// made. Returns the port, or -1. Call `listen_after_bind` next.
inline int BindWithFullBacklog(httplib::Server& server, const std::string& host, int port = 0) {
  int fd = -1;
  server.set_socket_options([&fd](int sock) {
    int one = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    fd = sock;
  });
  const int bound =
      port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  server.set_socket_options(httplib::default_socket_options);
  if (bound <= 0 || fd < 0) return -1;
  if (::listen(fd, SOMAXCONN) != 0) {
    ::close(fd);  // httplib closes its socket only when it stops listening
    return -1;
  }
  return bound;
}

}  // namespace cm::testing
