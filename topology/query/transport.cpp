#include "topology/query/transport.h"

#include <sys/socket.h>

#include <cerrno>

namespace cm::topology {

namespace {

class PlainTransport final : public Transport {
 public:
  explicit PlainTransport(int fd) : fd_(fd) {}

  Io Handshake() override { return Io::kOk; }

  Io Read(char* data, size_t size, size_t& done) override {
    done = 0;
    for (;;) {
      ssize_t n = ::recv(fd_, data, size, 0);
      if (n > 0) {
        done = static_cast<size_t>(n);
        return Io::kOk;
      }
      if (n == 0) return Io::kClosed;
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? Io::kWantRead : Io::kError;
    }
  }

  Io Write(const char* data, size_t size, size_t& done) override {
    done = 0;
    for (;;) {
      ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
      if (n >= 0) {
        done = static_cast<size_t>(n);
        return Io::kOk;
      }
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? Io::kWantWrite : Io::kError;
    }
  }

  bool HasPending() const override { return false; }
  void Shutdown() override {}

 private:
  int fd_;
};

}  // namespace

std::unique_ptr<Transport> Transport::Plain(int fd) { return std::make_unique<PlainTransport>(fd); }

}  // namespace cm::topology
