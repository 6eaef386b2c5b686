#pragma once

// The HTTP server's TLS: a certificate and key loaded once, and a TLS Transport per accepted
// socket. OpenSSL stays inside tls_context.cpp.
#include <memory>
#include <string>

#include "state/status.h"
#include "topology/query/transport.h"

struct ssl_ctx_st;
struct bio_method_st;

namespace cm::topology {

class TlsContext {
 public:
  // TLS 1.2 and later with the PEM certificate (chain) and private key; InvalidArgument naming
  // the file when one cannot be read or the key does not belong to the certificate.
  static state::Result<std::unique_ptr<TlsContext>> Load(const std::string& cert_file,
                                                         const std::string& key_file);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // The server side of a TLS session on the non-blocking socket `fd` (not owned), before its
  // handshake. Safe to call from any thread.
  std::unique_ptr<Transport> Accept(int fd) const;

 private:
  TlsContext(ssl_ctx_st* ctx, bio_method_st* socket_bio) : ctx_(ctx), socket_bio_(socket_bio) {}

  ssl_ctx_st* ctx_;
  // OpenSSL's own socket BIO writes with write(2): a peer that reset the connection would
  // raise SIGPIPE and end the process. Ours sends with MSG_NOSIGNAL.
  bio_method_st* socket_bio_;
};

}  // namespace cm::topology
