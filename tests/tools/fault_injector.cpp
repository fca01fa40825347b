// sg_fault_injector — a test-only NFQUEUE program that damages a TCP stream on purpose.
//
// The kernel here has no netem, so the integration tests need another way to reorder and
// duplicate segments. This program binds one queue in the namespace it runs in (an endpoint's
// OUTPUT chain) and applies a seeded schedule to every queued packet that carries TCP payload:
//
//   drop     NF_DROP (the sender's TCP retransmits)
//   dup      accept, and send a byte-identical copy through a raw socket (IP_HDRINCL). The copy
//            carries kCopyMark so that, when it comes back through the same queue, it passes
//            untouched instead of being duplicated again.
//   reorder  hold the verdict; the packet leaves after the next 1-3 payload packets of the queue
//            have been verdicted, or after --max-delay-ms, whichever comes first.
//   delay    every payload packet is held --delay-ms (in order) before its verdict.
//
// Pure ACKs and SYN/FIN/RST segments always pass at once: the point is to damage the byte
// stream, not the handshake. Everything is bounded: at most --max-held packets are held (the
// oldest is released when the limit is reached), poll() waits at most 100 ms, and the program
// stops after --max-runtime-s even without a signal. On SIGTERM/SIGINT it releases every held
// packet, prints its counts on stdout and exits 0.
//
// usage: sg_fault_injector --queue N [--seed S] [--drop P] [--dup P] [--reorder P]
//                          [--max-delay-ms MS] [--delay-ms MS] [--max-held N]
//                          [--max-runtime-s S]
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "net/checksum.hpp"
#include "net/packet.hpp"
#include "nfq/queue.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// skb->mark of the copies written by the duplicator ("dup" in leetspeak, unlikely elsewhere).
constexpr uint32_t kCopyMark = 0x5d0b;
// A copy goes out through a raw socket, which does not segment: only packets that fit the
// veth MTU can be duplicated (GSO super-packets are counted as dup_skipped).
constexpr size_t kMaxCopyLen = 1500;
constexpr int kMaxPollMs = 100;
constexpr int kMaxDatagramsPerWake = 256;

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct Options {
  uint16_t queue = 0;
  bool queue_set = false;
  uint64_t seed = 1;
  double drop = 0, dup = 0, reorder = 0;
  int max_delay_ms = 50;
  int delay_ms = 0;
  size_t max_held = 64;
  int max_runtime_s = 600;
};

#define SG_FI_COUNTERS(X)                                                    \
  X(seen, "payload packets queued (copies not included)")                   \
  X(dropped, "payload packets dropped")                                     \
  X(reordered, "payload packets held back behind later ones")               \
  X(duplicated, "copies written through the raw socket")                    \
  X(delayed, "payload packets held --delay-ms")                             \
  X(passed, "packets accepted at once without payload, SYN/FIN/RST, copies") \
  X(dup_skipped, "dup chosen but the packet was too large or a GSO packet") \
  X(dup_errors, "copies the raw socket refused")                            \
  X(held_overflow, "held packets released early because --max-held was hit") \
  X(verdict_errors, "verdicts the kernel refused")

struct Counts {
#define SG_X(name, help) uint64_t name = 0;
  SG_FI_COUNTERS(SG_X)
#undef SG_X
  void print(FILE* f) const {
    std::string line;
#define SG_X(name, help) line += std::string(line.empty() ? "" : " ") + #name "=" + std::to_string(name);
    SG_FI_COUNTERS(SG_X)
#undef SG_X
    std::fprintf(f, "%s\n", line.c_str());
    std::fflush(f);
  }
};

// A packet whose verdict is pending. `after_packets` counts down with every later payload packet
// (0 = released by time only).
struct Held {
  uint32_t id;
  Clock::time_point deadline;
  int after_packets;
};

bool parse_number(const char* s, double& out) {
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s, &end);
  return errno == 0 && end != s && *end == '\0';
}

bool parse_options(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "sg_fault_injector: %s needs a value\n", argv[i]);
      return false;
    }
    double v = 0;
    if (!parse_number(argv[i + 1], v) || v < 0) {
      std::fprintf(stderr, "sg_fault_injector: bad value for %s: %s\n", argv[i], argv[i + 1]);
      return false;
    }
    ++i;
    if (a == "--queue" && v <= 65535) {
      o.queue = static_cast<uint16_t>(v);
      o.queue_set = true;
    } else if (a == "--seed") {
      o.seed = static_cast<uint64_t>(v);
    } else if (a == "--drop" && v <= 1) {
      o.drop = v;
    } else if (a == "--dup" && v <= 1) {
      o.dup = v;
    } else if (a == "--reorder" && v <= 1) {
      o.reorder = v;
    } else if (a == "--max-delay-ms" && v <= 10000) {
      o.max_delay_ms = static_cast<int>(v);
    } else if (a == "--delay-ms" && v <= 10000) {
      o.delay_ms = static_cast<int>(v);
    } else if (a == "--max-held" && v >= 1 && v <= 4096) {
      o.max_held = static_cast<size_t>(v);
    } else if (a == "--max-runtime-s" && v >= 1 && v <= 86400) {
      o.max_runtime_s = static_cast<int>(v);
    } else {
      std::fprintf(stderr, "sg_fault_injector: unknown option or value out of range: %s\n",
                   std::string(a).c_str());
      return false;
    }
  }
  if (!o.queue_set) {
    std::fprintf(stderr, "sg_fault_injector: --queue N is required\n");
    return false;
  }
  return true;
}

class FaultInjector {
 public:
  FaultInjector(sg::nfq::NfQueue& queue, const Options& o)
      : queue_(queue), o_(o), rng_(o.seed) {
    raw4_ = raw_socket(AF_INET);
    raw6_ = raw_socket(AF_INET6);
  }
  ~FaultInjector() {
    if (raw4_ >= 0) ::close(raw4_);
    if (raw6_ >= 0) ::close(raw6_);
  }

  const Counts& counts() const { return counts_; }

  // Called for every queued packet: decide, verdict now or hold.
  void on_packet(sg::nfq::QueuedPacket& p) {
    auto view = sg::net::parse_packet(p.packet);
    bool untouched = p.truncated || p.mark == kCopyMark || !view || view->payload_len == 0 ||
                     (view->flags & (sg::net::kTcpSyn | sg::net::kTcpFin | sg::net::kTcpRst));
    if (untouched) {
      ++counts_.passed;
      verdict(p.id, NF_ACCEPT);
      return;
    }
    ++counts_.seen;
    // Every payload packet lets the held ones move one step closer to release.
    count_down_held();
    if (chance(o_.drop)) {
      ++counts_.dropped;
      verdict(p.id, NF_DROP);
      return;
    }
    if (chance(o_.dup)) duplicate(p, *view);
    auto now = Clock::now();
    if (chance(o_.reorder)) {
      ++counts_.reordered;
      int after = std::uniform_int_distribution<int>(1, 3)(rng_);
      hold({p.id, now + milliseconds(std::max(o_.max_delay_ms, o_.delay_ms)), after});
    } else if (o_.delay_ms > 0) {
      ++counts_.delayed;
      hold({p.id, now + milliseconds(o_.delay_ms), 0});
    } else {
      verdict(p.id, NF_ACCEPT);
    }
  }

  // Releases held packets whose time has come; returns the poll timeout until the next one.
  int release_due() {
    auto now = Clock::now();
    int wait_ms = kMaxPollMs;
    for (auto it = held_.begin(); it != held_.end();) {
      if (it->deadline <= now) {
        verdict(it->id, NF_ACCEPT);
        it = held_.erase(it);
      } else {
        auto left = std::chrono::duration_cast<milliseconds>(it->deadline - now).count() + 1;
        wait_ms = std::min<int>(wait_ms, static_cast<int>(left));
        ++it;
      }
    }
    return wait_ms;
  }

  void release_all() {
    for (const Held& h : held_) verdict(h.id, NF_ACCEPT);
    held_.clear();
  }

 private:
  static int raw_socket(int family) {
    int fd = ::socket(family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
    if (fd < 0) return -1;
    int mark = static_cast<int>(kCopyMark);
    if (::setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) {
      // Without the mark a copy would be queued and duplicated again: no duplication then.
      ::close(fd);
      return -1;
    }
    return fd;
  }

  bool chance(double p) {
    return p > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p;
  }

  void count_down_held() {
    for (auto it = held_.begin(); it != held_.end();) {
      if (it->after_packets > 0 && --it->after_packets == 0) {
        verdict(it->id, NF_ACCEPT);
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void hold(Held h) {
    if (held_.size() >= o_.max_held) {
      ++counts_.held_overflow;
      verdict(held_.front().id, NF_ACCEPT);
      held_.pop_front();
    }
    held_.push_back(h);
  }

  // Writes a copy of the packet (complete checksums: in OUTPUT the TCP checksum may be only
  // the pseudo-header sum) through the raw socket of its family.
  void duplicate(const sg::nfq::QueuedPacket& p, const sg::net::PacketView& v) {
    if (p.gso || v.packet_len > kMaxCopyLen) {
      ++counts_.dup_skipped;
      return;
    }
    copy_.assign(p.packet.begin(), p.packet.begin() + static_cast<ptrdiff_t>(v.packet_len));
    sg::net::finalize_checksums(copy_, v);
    ssize_t n = -1;
    if (v.ip_version == 4 && raw4_ >= 0) {
      sockaddr_in to{};
      to.sin_family = AF_INET;
      std::memcpy(&to.sin_addr, v.dst.bytes.data() + 12, 4);
      n = ::sendto(raw4_, copy_.data(), copy_.size(), 0, reinterpret_cast<sockaddr*>(&to),
                   sizeof to);
    } else if (v.ip_version == 6 && raw6_ >= 0) {
      sockaddr_in6 to{};
      to.sin6_family = AF_INET6;
      std::memcpy(&to.sin6_addr, v.dst.bytes.data(), 16);
      n = ::sendto(raw6_, copy_.data(), copy_.size(), 0, reinterpret_cast<sockaddr*>(&to),
                   sizeof to);
    }
    if (n == static_cast<ssize_t>(copy_.size())) {
      ++counts_.duplicated;
    } else {
      ++counts_.dup_errors;
    }
  }

  void verdict(uint32_t id, uint32_t v) {
    if (queue_.verdict(id, v) != 0) ++counts_.verdict_errors;
  }

  sg::nfq::NfQueue& queue_;
  Options o_;
  std::mt19937_64 rng_;
  std::deque<Held> held_;
  std::vector<uint8_t> copy_;
  int raw4_ = -1, raw6_ = -1;
  Counts counts_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_options(argc, argv, o)) return 2;

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  sg::nfq::QueueOptions qo;
  qo.queue_num = o.queue;
  qo.max_len = 1024;
  auto opened = sg::nfq::NfQueue::open(qo);
  if (!opened) {
    std::fprintf(stderr, "sg_fault_injector: %s\n", opened.error().c_str());
    return 1;
  }
  sg::nfq::NfQueue& queue = **opened;
  FaultInjector fi(queue, o);
  std::fprintf(stderr,
               "sg_fault_injector: ready queue=%u seed=%llu drop=%g dup=%g reorder=%g "
               "max_delay_ms=%d delay_ms=%d max_held=%zu\n",
               o.queue, static_cast<unsigned long long>(o.seed), o.drop, o.dup, o.reorder,
               o.max_delay_ms, o.delay_ms, o.max_held);

  auto end = Clock::now() + std::chrono::seconds(o.max_runtime_s);
  while (!g_stop && Clock::now() < end) {
    int wait_ms = fi.release_due();
    pollfd pfd{queue.fd(), POLLIN, 0};
    int ready = ::poll(&pfd, 1, wait_ms);
    if (ready < 0 && errno != EINTR) {
      std::fprintf(stderr, "sg_fault_injector: poll: %s\n", std::strerror(errno));
      break;
    }
    if (ready <= 0) continue;
    for (int i = 0; i < kMaxDatagramsPerWake; ++i) {
      auto status = queue.receive([&](sg::nfq::QueuedPacket& p) { fi.on_packet(p); });
      if (status == sg::nfq::ReceiveStatus::kWouldBlock) break;
    }
  }
  fi.release_all();
  fi.counts().print(stdout);
  queue.close();
  return 0;
}
