#pragma once

// A client socket that sends exactly the bytes a test gives it, for what an HTTP library
// will not send: slow or partial requests, smuggling shapes, pipelined requests.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace cm::testing {

class RawHttpConnection {
 public:
  explicit RawHttpConnection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  ~RawHttpConnection() { ::close(fd_); }
  RawHttpConnection(const RawHttpConnection&) = delete;
  RawHttpConnection& operator=(const RawHttpConnection&) = delete;

  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }

  // Everything received until the server closes or `timeout` passes.
  std::string ReadUntilClosed(std::chrono::milliseconds timeout) {
    return ReadWhile([](const std::string&) { return true; }, timeout);
  }

  // Received bytes until they contain `marker` or `timeout` passes.
  std::string ReadUntil(const std::string& marker, std::chrono::milliseconds timeout) {
    return ReadWhile([&](const std::string& out) { return out.find(marker) == std::string::npos; },
                     timeout);
  }

  // Received bytes until `count` complete responses (by Content-Length) or `timeout`.
  std::string ReadResponses(size_t count, std::chrono::milliseconds timeout) {
    return ReadWhile([&](const std::string& out) { return CompleteResponses(out) < count; },
                     timeout);
  }

  // The status code of the first response in `text`, 0 if there is none.
  static int Status(const std::string& text) {
    if (text.rfind("HTTP/1.", 0) != 0 || text.size() < 12) return 0;
    return std::stoi(text.substr(9, 3));
  }
  static std::string Body(const std::string& text) {
    size_t at = text.find("\r\n\r\n");
    return at == std::string::npos ? "" : text.substr(at + 4);
  }

 private:
  // Receives while `more(received so far)` holds, until the peer closes or `timeout` passes.
  template <typename More>
  std::string ReadWhile(More more, std::chrono::milliseconds timeout) {
    std::string out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (more(out) && Wait(deadline)) {
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  bool Wait(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(left.count())) > 0;
  }
  static size_t CompleteResponses(const std::string& text) {
    size_t count = 0, at = 0;
    for (;;) {
      size_t head_end = text.find("\r\n\r\n", at);
      if (head_end == std::string::npos) return count;
      size_t cl = text.find("Content-Length: ", at);
      size_t length = cl != std::string::npos && cl < head_end
                          ? std::stoul(text.substr(cl + 16, text.find("\r\n", cl) - cl - 16))
                          : 0;
      if (text.size() < head_end + 4 + length) return count;
      ++count;
      at = head_end + 4 + length;
    }
  }

  int fd_;
};

}  // namespace cm::testing
