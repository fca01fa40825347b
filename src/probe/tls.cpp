#include "probe/tls.hpp"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>

#include <cerrno>
#include <cstring>

namespace sg::probe {

struct TlsChannel::State {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  int fd = -1;
  ~State() {
    if (ssl) SSL_free(ssl);
    if (ctx) SSL_CTX_free(ctx);
  }
};

namespace {

// The first error on OpenSSL's queue (or errno for a failed system call), as one line.
std::string ssl_error_text(SSL* ssl, int ret) {
  const int e = SSL_get_error(ssl, ret);
  const unsigned long code = ERR_peek_error();
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    ERR_clear_error();
    return buf;
  }
  if (e == SSL_ERROR_SYSCALL) {
    if (errno != 0) return std::string("system call: ") + std::strerror(errno);
    return "connection closed by the peer";
  }
  if (e == SSL_ERROR_ZERO_RETURN) return "connection closed by the peer (close_notify)";
  return "TLS error " + std::to_string(e);
}

// After a non-positive SSL_* result: wait for what OpenSSL needs, or say why not.
IoResult wait_for(SSL* ssl, int fd, int ret, Deadline deadline) {
  const int e = SSL_get_error(ssl, ret);
  if (e == SSL_ERROR_WANT_READ) return wait_ready(fd, POLLIN, deadline);
  if (e == SSL_ERROR_WANT_WRITE) return wait_ready(fd, POLLOUT, deadline);
  const bool closed =
      e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 &&
                                     (errno == 0 || errno == ECONNRESET || errno == EPIPE));
  return io_fail(closed ? IoStatus::kClosed : IoStatus::kError, ssl_error_text(ssl, ret));
}

bool is_address_literal(const std::string& name) {
  in6_addr a6;
  in_addr a4;
  return inet_pton(AF_INET6, name.c_str(), &a6) == 1 || inet_pton(AF_INET, name.c_str(), &a4) == 1;
}

std::string subject_of(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return {};
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_ONELINE);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string out = n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
  BIO_free(bio);
  return out;
}

}  // namespace

TlsChannel::TlsChannel(std::unique_ptr<State> s) : s_(std::move(s)) {}
TlsChannel::~TlsChannel() = default;

std::unique_ptr<TlsChannel> TlsChannel::handshake(int fd, const std::string& server_name,
                                                  Deadline deadline, TlsInfo& info) {
  info = TlsInfo{};
  ERR_clear_error();
  auto s = std::make_unique<State>();
  s->fd = fd;
  s->ctx = SSL_CTX_new(TLS_client_method());
  if (!s->ctx) {
    info.error = "cannot create a TLS context";
    return nullptr;
  }
  // Verified for the report only: a self-signed certificate is common on MX hosts and says
  // nothing about the path.
  SSL_CTX_set_verify(s->ctx, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_default_verify_paths(s->ctx);
  s->ssl = SSL_new(s->ctx);
  if (!s->ssl || SSL_set_fd(s->ssl, fd) != 1) {
    info.error = "cannot create a TLS session";
    return nullptr;
  }
  if (!server_name.empty() && !is_address_literal(server_name)) {
    SSL_set_tlsext_host_name(s->ssl, server_name.c_str());
    SSL_set1_host(s->ssl, server_name.c_str());
  }
  for (;;) {
    errno = 0;
    const int ret = SSL_connect(s->ssl);
    if (ret == 1) break;
    IoResult w = wait_for(s->ssl, fd, ret, deadline);
    if (!w.ok()) {
      info.error = w.status == IoStatus::kTimeout ? "handshake timed out" : w.error;
      return nullptr;
    }
  }
  info.ok = true;
  info.protocol = SSL_get_version(s->ssl);
  info.cipher = SSL_get_cipher_name(s->ssl);
  if (X509* cert = SSL_get1_peer_certificate(s->ssl)) {
    info.peer_subject = subject_of(cert);
    X509_free(cert);
  }
  const long v = SSL_get_verify_result(s->ssl);
  info.verify = v == X509_V_OK ? "ok" : X509_verify_cert_error_string(v);
  return std::unique_ptr<TlsChannel>(new TlsChannel(std::move(s)));
}

IoResult TlsChannel::read_some(std::string& out, Deadline deadline) {
  char buf[4096];
  for (;;) {
    ERR_clear_error();
    errno = 0;
    const int n = SSL_read(s_->ssl, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      return io_ok();
    }
    IoResult w = wait_for(s_->ssl, s_->fd, n, deadline);
    if (!w.ok()) return w;
  }
}

IoResult TlsChannel::write_all(std::string_view bytes, Deadline deadline) {
  while (!bytes.empty()) {
    ERR_clear_error();
    errno = 0;
    const int n = SSL_write(s_->ssl, bytes.data(), static_cast<int>(bytes.size()));
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    IoResult w = wait_for(s_->ssl, s_->fd, n, deadline);
    if (!w.ok()) return w;
  }
  return io_ok();
}

void TlsChannel::shutdown() {
  ERR_clear_error();
  SSL_shutdown(s_->ssl);  // non-blocking socket: one attempt, no wait
  ERR_clear_error();
}

}  // namespace sg::probe
