#pragma once

// The byte stream of one HTTP connection, plain TCP or TLS, behind one interface: the reactor
// and the workers read and write through it and wait on the socket themselves, so the same
// non-blocking code serves both (tls_context.h makes the TLS one).
#include <cstddef>
#include <memory>

namespace cm::topology {

class Transport {
 public:
  // What a call did. kWantRead and kWantWrite: nothing yet, retry the same call once the
  // socket is readable (writable); TLS may need to write to read and the other way round.
  enum class Io { kOk, kWantRead, kWantWrite, kClosed, kError };

  // A non-blocking TCP socket as it is; the caller keeps owning (and closes) `fd`.
  static std::unique_ptr<Transport> Plain(int fd);

  virtual ~Transport() = default;
  // Completes the TLS handshake step by step; kOk at once for plain TCP.
  virtual Io Handshake() = 0;
  // kOk with `done` > 0 bytes read, or why not (kClosed: the peer ended the stream).
  virtual Io Read(char* data, size_t size, size_t& done) = 0;
  // kOk with `done` > 0 bytes written, or why not.
  virtual Io Write(const char* data, size_t size, size_t& done) = 0;
  // Bytes already received and decrypted: readable although the socket may not be.
  virtual bool HasPending() const = 0;
  // Says goodbye at this layer (TLS close_notify), best effort and once; the socket stays open.
  virtual void Shutdown() = 0;
};

}  // namespace cm::topology
