#include "probe/socket_io.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace sg::probe {
namespace {

int millis_left(Deadline deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > 60'000'000 ? 60'000'000 : static_cast<int>(left);
}

std::string address_text(const sockaddr* sa, uint16_t port) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(port);
  }
  inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(port);
}

}  // namespace

std::string_view to_string(IoStatus s) {
  switch (s) {
    case IoStatus::kOk:
      return "ok";
    case IoStatus::kTimeout:
      return "timeout";
    case IoStatus::kClosed:
      return "closed";
    case IoStatus::kError:
      return "error";
  }
  return "error";
}

IoResult io_ok() {
  return {};
}
IoResult io_fail(IoStatus s, std::string error) {
  return {s, std::move(error)};
}
IoResult io_errno(const char* what, int err) {
  const IoStatus s = (err == ECONNRESET || err == EPIPE) ? IoStatus::kClosed : IoStatus::kError;
  return {s, std::string(what) + ": " + std::strerror(err)};
}

IoResult wait_ready(int fd, short events, Deadline deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, millis_left(deadline));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_errno("poll", errno);
    }
    if (n == 0) return io_fail(IoStatus::kTimeout, "timed out");
    // POLLHUP / POLLERR: let the following call report what exactly happened.
    return io_ok();
  }
}

Expected<std::vector<Address>, std::string> resolve(const std::string& host, uint16_t port,
                                                    Family family, Deadline deadline) {
  // Everything the lookup thread reads or writes lives in one heap block: if the lookup cannot
  // be cancelled at the deadline, the block is left to it (a few bytes, once per process).
  struct Lookup {
    std::string name;
    std::string service;
    addrinfo hints{};
    gaicb request{};
  };
  auto lookup = std::make_unique<Lookup>();
  lookup->name = host;
  lookup->service = std::to_string(port);
  lookup->hints.ai_family = family == Family::kIpv4   ? AF_INET
                            : family == Family::kIpv6 ? AF_INET6
                                                      : AF_UNSPEC;
  lookup->hints.ai_socktype = SOCK_STREAM;
  lookup->hints.ai_protocol = IPPROTO_TCP;
  gaicb& request = lookup->request;
  request.ar_name = lookup->name.c_str();
  request.ar_service = lookup->service.c_str();
  request.ar_request = &lookup->hints;
  gaicb* list[1] = {&request};
  int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, nullptr);
  if (rc != 0) return unexpected(std::string("cannot resolve: ") + gai_strerror(rc));
  for (;;) {
    const int left = millis_left(deadline);
    timespec ts{left / 1000, static_cast<long>(left % 1000) * 1'000'000};
    const gaicb* const wait_list[1] = {&request};
    rc = gai_suspend(wait_list, 1, &ts);
    if (gai_error(&request) != EAI_INPROGRESS) break;
    if ((rc == EAI_INTR || rc == EAI_AGAIN || rc == 0) && Clock::now() < deadline) continue;
    if (gai_cancel(&request) == EAI_CANCELED) {
      if (request.ar_result) freeaddrinfo(request.ar_result);
    } else {
      (void)lookup.release();  // still running: it owns the block now
    }
    return unexpected(std::string("cannot resolve '") + host + "': timed out");
  }
  rc = gai_error(&request);
  if (rc != 0) return unexpected(std::string("cannot resolve '") + host + "': " + gai_strerror(rc));
  std::vector<Address> out;
  for (const addrinfo* ai = request.ar_result; ai; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    Address a;
    a.family = ai->ai_family;
    const auto* p = reinterpret_cast<const uint8_t*>(ai->ai_addr);
    a.sockaddr.assign(p, p + ai->ai_addrlen);
    a.text = address_text(ai->ai_addr, port);
    bool seen = false;
    for (const Address& b : out) seen = seen || b.sockaddr == a.sockaddr;
    if (!seen) out.push_back(std::move(a));
  }
  freeaddrinfo(request.ar_result);
  if (out.empty()) return unexpected(std::string("cannot resolve '") + host + "': no address");
  return out;
}

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

Socket::~Socket() {
  if (fd_ >= 0) ::close(fd_);
}

int Socket::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

IoResult Socket::read_some(std::string& out, Deadline deadline) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      return io_ok();
    }
    if (n == 0) return io_fail(IoStatus::kClosed, "connection closed by the peer");
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return io_errno("recv", errno);
    IoResult w = wait_ready(fd_, POLLIN, deadline);
    if (!w.ok()) return w;
  }
}

IoResult Socket::write_all(std::string_view bytes, Deadline deadline) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return io_errno("send", errno);
    IoResult w = wait_ready(fd_, POLLOUT, deadline);
    if (!w.ok()) return w;
  }
  return io_ok();
}

Expected<Socket, IoResult> connect_to(const Address& a, Deadline deadline) {
  Socket s(::socket(a.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
  if (s.fd() < 0) return unexpected(io_errno("socket", errno));
  // Commands are single short lines sent one at a time, each waiting for its reply: Nagle
  // would only add delay. A gateway that reassembles must cope with any segmentation anyway.
  const int one = 1;
  ::setsockopt(s.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const auto* sa = reinterpret_cast<const sockaddr*>(a.sockaddr.data());
  // Errors say what happened ("Connection refused"), the caller says to whom.
  auto failed = [](int err) {
    return io_fail(err == ECONNREFUSED ? IoStatus::kClosed : IoStatus::kError, std::strerror(err));
  };
  if (::connect(s.fd(), sa, static_cast<socklen_t>(a.sockaddr.size())) == 0) return s;
  if (errno != EINPROGRESS) return unexpected(failed(errno));
  IoResult w = wait_ready(s.fd(), POLLOUT, deadline);
  if (!w.ok()) return unexpected(w);
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    return unexpected(io_errno("getsockopt", errno));
  if (err != 0) return unexpected(failed(err));
  return s;
}

}  // namespace sg::probe
