#pragma once
// Sending whole IP packets the daemon built itself (answers in the server's place, their
// retransmissions, resets) through raw sockets: IPv4 IPPROTO_RAW (header included implicitly)
// and IPv6 IPPROTO_RAW with IPV6_HDRINCL. The kernel routes them like any locally generated
// packet: they cross the OUTPUT and POSTROUTING hooks, carrying the injector's SO_MARK so that
// smtpguard's own output chain lets them pass instead of queueing them back to the daemon.
//
// Nothing here throws or blocks after create(): a packet the kernel cannot take right now is
// dropped and counted, like a packet lost on the wire (the gateway retransmits its own data).
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "util/counter_set.hpp"
#include "util/expected.hpp"

namespace sg::nfq {

// Every injection counter of a worker, declared once.
#define SG_INJECT_COUNTERS(X)                                                                  \
  X(inject_sent, "gateway-originated packets handed to the kernel")                            \
  X(inject_dropped, "not sent: socket buffer or kernel memory full (EAGAIN, ENOBUFS, ENOMEM)") \
  X(inject_unroutable, "not sent: no route or no usable address (ENETUNREACH, EHOSTUNREACH)")  \
  X(inject_filtered, "not sent: refused by a local firewall rule on output (EPERM, EACCES)")   \
  X(inject_too_big, "not sent: longer than the route's MTU (EMSGSIZE)")                        \
  X(inject_malformed, "not sent: not a whole IPv4/IPv6 packet (EINVAL)")                       \
  X(inject_errors, "not sent: any other error (EAFNOSUPPORT: IPv6 disabled, ...)")

SG_DECLARE_COUNTERS(InjectCounter, kInjectCounterInfo, SG_INJECT_COUNTERS)

// Written by one worker thread, read by others.
using InjectCounters = CounterSet<InjectCounter>;

// Where sendto() must aim a packet: the destination of its own IP header, port 0 (for an
// IPPROTO_RAW socket a non-zero IPv6 "port" would name another protocol and be refused).
struct InjectDestination {
  int family = 0;  // AF_INET or AF_INET6
  sockaddr_storage address{};
  socklen_t length = 0;
};

// The destination of a whole IPv4 or IPv6 packet: the version nibble picks the family, and the
// length fields must describe exactly these bytes (a caller bug otherwise: nullopt).
std::optional<InjectDestination> injection_destination(std::span<const uint8_t> ip_packet);

// The counter a failed sendto() with this errno bumps.
InjectCounter classify_send_error(int err);

class RawInjector {
 public:
  // Opens both sockets, non-blocking, with SO_MARK = mark (needs CAP_NET_ADMIN) unless mark is
  // 0. A kernel without IPv6 (EAFNOSUPPORT) gets an IPv4-only injector: no IPv6 flow can exist
  // there. Startup only: the error is a sentence naming the call that failed.
  static Expected<std::unique_ptr<RawInjector>, std::string> create(uint32_t mark);
  ~RawInjector();
  RawInjector(const RawInjector&) = delete;
  RawInjector& operator=(const RawInjector&) = delete;

  // Sends one whole IP packet (checksums complete; the kernel only fills an IPv4 identification
  // of 0 and redoes the IPv4 header checksum). True when the kernel took it; every outcome is
  // counted, and the errno of the last failure is kept.
  bool send(std::span<const uint8_t> ip_packet);

  bool has_ipv6() const { return fd6_ >= 0; }
  uint32_t mark() const { return mark_; }
  int last_errno() const { return last_errno_; }
  const InjectCounters& counters() const { return counters_; }

 private:
  RawInjector(int fd4, int fd6, uint32_t mark) : fd4_(fd4), fd6_(fd6), mark_(mark) {}

  int fd4_ = -1;
  int fd6_ = -1;
  uint32_t mark_ = 0;
  int last_errno_ = 0;
  InjectCounters counters_;
};

}  // namespace sg::nfq
