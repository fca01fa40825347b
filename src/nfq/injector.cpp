#include "nfq/injector.hpp"

#include "net/socket_address.hpp"
#include "net/wire.hpp"
#include "util/byte_order.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sg::nfq {
namespace {

using net::kIpv4MinHeader;
using net::kIpv6Header;

#ifndef IPV6_HDRINCL
constexpr int IPV6_HDRINCL = 36;  // linux/in6.h, Linux >= 4.5
#endif

std::string errno_text(int err) {
  return std::string(std::strerror(err));
}

// Closes a descriptor on every early return of create().
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

int set_mark(int fd, uint32_t mark) {
  if (mark == 0) return 0;
  return setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) == 0 ? 0 : errno;
}

}  // namespace

std::optional<InjectDestination> injection_destination(std::span<const uint8_t> p) {
  if (p.empty()) return std::nullopt;
  InjectDestination d;
  const uint8_t version = p[0] >> 4;
  if (version == 4) {
    if (p.size() < kIpv4MinHeader) return std::nullopt;
    const size_t header_len = static_cast<size_t>(p[0] & 0x0f) * 4;
    if (header_len < kIpv4MinHeader || header_len > p.size()) return std::nullopt;
    if (load_be16(p, 2) != p.size()) return std::nullopt;
    d.family = AF_INET;
    d.length = net::fill_socket_address(d.address, AF_INET, p.data() + 16, 0);
    return d;
  }
  if (version == 6) {
    if (p.size() < kIpv6Header || kIpv6Header + load_be16(p, 4) != p.size()) return std::nullopt;
    // The header's destination, not a routing header's final one: the kernel routes towards
    // the next hop the packet names, as it would for a forwarded packet.
    d.family = AF_INET6;
    d.length = net::fill_socket_address(d.address, AF_INET6, p.data() + 24, 0);
    return d;
  }
  return std::nullopt;
}

InjectCounter classify_send_error(int err) {
  switch (err) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case ENOBUFS:
    case ENOMEM:
      return InjectCounter::inject_dropped;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ENETDOWN:
    case EHOSTDOWN:
    case EADDRNOTAVAIL:
      return InjectCounter::inject_unroutable;
    case EPERM:  // an nftables/iptables drop on output (NF_DROP becomes -EPERM)
    case EACCES:
      return InjectCounter::inject_filtered;
    case EMSGSIZE:
      return InjectCounter::inject_too_big;
    case EINVAL:  // the kernel's own header checks (e.g. IHL past the data)
      return InjectCounter::inject_malformed;
    default:
      return InjectCounter::inject_errors;
  }
}

Expected<std::unique_ptr<RawInjector>, std::string> RawInjector::create(uint32_t mark) {
  const std::string where = "injector: ";
  // IPPROTO_RAW implies IP_HDRINCL on IPv4 (raw(7)), and such a socket receives nothing, so it
  // never accumulates a receive queue.
  Fd fd4(::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW));
  if (fd4.get() < 0) {
    return unexpected(where + "socket(AF_INET, SOCK_RAW, IPPROTO_RAW): " + errno_text(errno) +
                      " (needs CAP_NET_RAW)");
  }
  if (int err = set_mark(fd4.get(), mark)) {
    return unexpected(where + "setsockopt(SO_MARK) on the IPv4 raw socket: " + errno_text(err) +
                      " (needs CAP_NET_ADMIN)");
  }

  Fd fd6(::socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW));
  if (fd6.get() < 0) {
    const int err = errno;
    if (err == EAFNOSUPPORT) {
      // ipv6.disable=1: no IPv6 packet can reach the queues either.
      return std::unique_ptr<RawInjector>(new RawInjector(fd4.release(), -1, mark));
    }
    return unexpected(where + "socket(AF_INET6, SOCK_RAW, IPPROTO_RAW): " + errno_text(err) +
                      " (needs CAP_NET_RAW)");
  }
  const int on = 1;
  if (setsockopt(fd6.get(), IPPROTO_IPV6, IPV6_HDRINCL, &on, sizeof(on)) != 0) {
    return unexpected(where + "setsockopt(IPV6_HDRINCL): " + errno_text(errno) +
                      " (needs Linux 4.5 or later)");
  }
  if (int err = set_mark(fd6.get(), mark)) {
    return unexpected(where + "setsockopt(SO_MARK) on the IPv6 raw socket: " + errno_text(err) +
                      " (needs CAP_NET_ADMIN)");
  }
  return std::unique_ptr<RawInjector>(new RawInjector(fd4.release(), fd6.release(), mark));
}

RawInjector::~RawInjector() {
  if (fd4_ >= 0) ::close(fd4_);
  if (fd6_ >= 0) ::close(fd6_);
}

bool RawInjector::send(std::span<const uint8_t> ip_packet) {
  const std::optional<InjectDestination> d = injection_destination(ip_packet);
  if (!d) {
    last_errno_ = EINVAL;
    counters_.add(InjectCounter::inject_malformed);
    return false;
  }
  const int fd = d->family == AF_INET ? fd4_ : fd6_;
  if (fd < 0) {
    last_errno_ = EAFNOSUPPORT;  // an IPv4-only injector (see create)
    counters_.add(InjectCounter::inject_errors);
    return false;
  }
  // A signal can interrupt even a non-blocking send; one retry is enough for that.
  ssize_t n = -1;
  int err = 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    n = ::sendto(fd, ip_packet.data(), ip_packet.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                 reinterpret_cast<const sockaddr*>(&d->address), d->length);
    err = n < 0 ? errno : 0;
    if (err != EINTR) break;
  }
  if (n >= 0) {
    counters_.add(InjectCounter::inject_sent);
    return true;
  }
  last_errno_ = err;
  counters_.add(classify_send_error(err));
  return false;
}

}  // namespace sg::nfq
