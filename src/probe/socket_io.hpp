#pragma once
// Bounded socket I/O for smtpguard-probe: every wait has a deadline, so no step can hang. The
// socket is non-blocking and every read, write, connect and TLS round trip waits in poll(2) for
// at most the time left until its step's deadline.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.hpp"

namespace sg::probe {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

inline Deadline deadline_after(std::chrono::milliseconds d) {
  return Clock::now() + d;
}

enum class IoStatus : uint8_t {
  kOk,
  kTimeout,  // the deadline passed first
  kClosed,   // the peer closed the connection (EOF) or reset it
  kError,    // anything else; the message says what
};
std::string_view to_string(IoStatus s);

struct IoResult {
  IoStatus status = IoStatus::kOk;
  std::string error;  // empty when kOk
  bool ok() const { return status == IoStatus::kOk; }
};
IoResult io_ok();
IoResult io_fail(IoStatus s, std::string error);
// From errno after a failed call, naming the call.
IoResult io_errno(const char* what, int err);

// Waits until `fd` is ready for `events` (POLLIN / POLLOUT) or the deadline passes.
IoResult wait_ready(int fd, short events, Deadline deadline);

// An address to connect to, as getaddrinfo returned it.
struct Address {
  int family = 0;
  std::vector<uint8_t> sockaddr;  // a struct sockaddr_in or sockaddr_in6
  std::string text;               // "198.18.2.1:25" or "[2001:db8:2::1]:25"
};

enum class Family : uint8_t { kAny, kIpv4, kIpv6 };

// Resolves `host` (a name or an address literal) for TCP `port`, bounded by the deadline
// (getaddrinfo_a: a resolver that does not answer cannot stall the probe).
Expected<std::vector<Address>, std::string> resolve(const std::string& host, uint16_t port,
                                                    Family family, Deadline deadline);

// A connected, non-blocking TCP socket, closed on destruction.
class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& o) noexcept : fd_(o.release()) {}
  Socket& operator=(Socket&& o) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket();

  int fd() const { return fd_; }
  int release();

  // Appends what is there (at least one byte) to `out`; waits until the deadline for it.
  IoResult read_some(std::string& out, Deadline deadline);
  IoResult write_all(std::string_view bytes, Deadline deadline);

 private:
  int fd_ = -1;
};

// Connects to `a` (non-blocking connect + poll) before the deadline.
Expected<Socket, IoResult> connect_to(const Address& a, Deadline deadline);

}  // namespace sg::probe
