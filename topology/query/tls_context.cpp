#include "topology/query/tls_context.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace cm::topology {

namespace {

// The newest error OpenSSL queued on this thread, and an empty queue for the next call.
std::string OpenSslError() {
  unsigned long code = ERR_peek_last_error();
  char text[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, text, sizeof text);
  ERR_clear_error();
  return text;
}

int SocketOf(BIO* bio) { return static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio))); }

int BioWrite(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  for (;;) {
    ssize_t n = ::send(SocketOf(bio), data, static_cast<size_t>(size), MSG_NOSIGNAL);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(bio);
    return -1;
  }
}

int BioRead(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  for (;;) {
    ssize_t n = ::recv(SocketOf(bio), data, static_cast<size_t>(size), 0);
    if (n >= 0) return static_cast<int>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(bio);
    return -1;
  }
}

long BioCtrl(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }

int BioCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

int Clamp(size_t size) { return static_cast<int>(std::min<size_t>(size, INT_MAX)); }

class TlsTransport final : public Transport {
 public:
  explicit TlsTransport(SSL* ssl) : ssl_(ssl) {}
  ~TlsTransport() override {
    Shutdown();
    SSL_free(ssl_);
  }

  Io Handshake() override {
    ERR_clear_error();
    int rc = SSL_accept(ssl_);
    return rc == 1 ? Io::kOk : Failed(rc);
  }

  Io Read(char* data, size_t size, size_t& done) override {
    done = 0;
    ERR_clear_error();
    int n = SSL_read(ssl_, data, Clamp(size));
    if (n <= 0) return Failed(n);
    done = static_cast<size_t>(n);
    return Io::kOk;
  }

  Io Write(const char* data, size_t size, size_t& done) override {
    done = 0;
    ERR_clear_error();
    int n = SSL_write(ssl_, data, Clamp(size));
    if (n <= 0) return Failed(n);
    done = static_cast<size_t>(n);
    return Io::kOk;
  }

  bool HasPending() const override { return SSL_pending(ssl_) > 0; }

  void Shutdown() override {
    // OpenSSL forbids SSL_shutdown after a fatal error, and before the handshake there is no
    // session to close.
    if (shut_ || broken_ || !SSL_is_init_finished(ssl_)) {
      shut_ = true;
      return;
    }
    shut_ = true;
    ERR_clear_error();
    SSL_shutdown(ssl_);  // sends close_notify if the socket takes it; no wait for the peer's
    ERR_clear_error();
  }

 private:
  Io Failed(int rc) {
    switch (SSL_get_error(ssl_, rc)) {
      case SSL_ERROR_WANT_READ:
        return Io::kWantRead;
      case SSL_ERROR_WANT_WRITE:
        return Io::kWantWrite;
      case SSL_ERROR_ZERO_RETURN:
        return Io::kClosed;
      default:
        broken_ = true;
        ERR_clear_error();
        return Io::kError;
    }
  }

  SSL* ssl_;
  bool shut_ = false;
  bool broken_ = false;
};

}  // namespace

state::Result<std::unique_ptr<TlsContext>> TlsContext::Load(const std::string& cert_file,
                                                            const std::string& key_file) {
  for (const auto& [what, path] :
       {std::pair<const char*, const std::string&>{"certificate", cert_file},
        {"private key", key_file}}) {
    if (path.empty())
      return state::Status::InvalidArgument(std::string("TLS ") + what + ": no file given");
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (f == nullptr)
      return state::Status::InvalidArgument(std::string("TLS ") + what + " " + path + ": " +
                                            std::strerror(errno));
    std::fclose(f);
  }
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()),
                                                        &SSL_CTX_free);
  if (!ctx) return state::Status::IOError("cannot create a TLS context: " + OpenSslError());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Writes resume with the rest of a buffer after WANT_WRITE, as send(2) does.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1)
    return state::Status::InvalidArgument("TLS certificate " + cert_file +
                                          ": not a PEM certificate (" + OpenSslError() + ")");
  // Read here rather than with SSL_CTX_use_PrivateKey_file: an encrypted key must fail, not
  // prompt for a passphrase on the terminal, and a mismatch deserves its own message.
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new_file(key_file.c_str(), "r"), &BIO_free);
  pem_password_cb* no_passphrase = [](char*, int, int, void*) { return 0; };
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr) : nullptr,
      &EVP_PKEY_free);
  if (!key)
    return state::Status::InvalidArgument("TLS private key " + key_file +
                                          ": not an unencrypted PEM private key (" +
                                          OpenSslError() + ")");
  if (X509_check_private_key(SSL_CTX_get0_certificate(ctx.get()), key.get()) != 1) {
    ERR_clear_error();
    return state::Status::InvalidArgument("TLS private key " + key_file +
                                          " does not match the certificate " + cert_file);
  }
  if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1)
    return state::Status::InvalidArgument("TLS private key " + key_file + ": " + OpenSslError());
  BIO_METHOD* socket_bio =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cmstream socket");
  if (socket_bio == nullptr)
    return state::Status::IOError("cannot create a TLS socket BIO: " + OpenSslError());
  BIO_meth_set_write(socket_bio, BioWrite);
  BIO_meth_set_read(socket_bio, BioRead);
  BIO_meth_set_ctrl(socket_bio, BioCtrl);
  BIO_meth_set_create(socket_bio, BioCreate);
  return std::unique_ptr<TlsContext>(new TlsContext(ctx.release(), socket_bio));
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
  BIO_meth_free(socket_bio_);
}

std::unique_ptr<Transport> TlsContext::Accept(int fd) const {
  SSL* ssl = SSL_new(ctx_);
  BIO* bio = ssl != nullptr ? BIO_new(socket_bio_) : nullptr;
  if (bio == nullptr) {
    SSL_free(ssl);
    ERR_clear_error();
    return nullptr;
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
  SSL_set_bio(ssl, bio, bio);
  SSL_set_accept_state(ssl);
  return std::make_unique<TlsTransport>(ssl);
}

}  // namespace cm::topology
