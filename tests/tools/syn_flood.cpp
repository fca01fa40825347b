// sg_syn_flood — a test-only SYN flood generator for the lab (tests/integration/flood_test.sh).
//
// Sends TCP SYNs with spoofed source addresses and random source ports through a raw socket
// (IPv4 with IP_HDRINCL, or IPv6 with IPPROTO_RAW, which implies the header is included), each
// with a random ISN and an MSS option, as fast as possible or at --rate packets per second.
// It stops by itself: after --count SYNs or after --max-seconds, whichever comes first, and on
// SIGINT/SIGTERM. It reads nothing; the answers (SYN-ACKs to addresses that do not exist) go
// nowhere.
//
// Only lab addresses are accepted: every source and the destination must lie in 198.18.0.0/15
// (IPv4) or 2001:db8::/32 (IPv6), the ranges the lab uses (DESIGN.md §8); anything else is refused
// before a socket is opened.
//
// usage: sg_syn_flood --dst ADDR [--dport PORT] --src-from ADDR --src-to ADDR
//                     [--count N] [--max-seconds S] [--rate PPS] [--seed S] [--batch N]
//
//   --src-from/--src-to  the spoofed sources, an inclusive range (IPv4: e.g. 198.18.1.2 to
//                        198.18.1.253; IPv6: addresses that differ only in the last 64 bits)
//   --count N            SYNs to send (default 1000)
//   --max-seconds S      stop after S seconds even if fewer were sent (default 60, at most 3600)
//   --rate PPS           packets per second, 0 = as fast as possible (default 0)
//   --seed S             seed of the address/port/ISN generator (default 1)
//   --batch N            datagrams per sendmmsg call (default 64)
//
// Output (stdout, last line): "sg_syn_flood: sent N SYNs in T s (P pps), send errors E, stopped
// by count|time|signal". Exit status 0 when at least one SYN went out, 1 otherwise, 2 on bad usage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) {
  g_stop = 1;
}

constexpr size_t kIp4Header = 20;
constexpr size_t kIp6Header = 40;
constexpr size_t kTcpHeader = 24;  // 20 + MSS option
constexpr uint16_t kMss = 1460;

struct Options {
  bool v6 = false;
  in_addr dst4{}, from4{}, to4{};
  in6_addr dst6{}, from6{}, to6{};
  uint16_t dport = 25;
  uint64_t count = 1000;
  double max_seconds = 60;
  uint64_t rate = 0;
  uint64_t seed = 1;
  unsigned batch = 64;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "sg_syn_flood: %s\n"
               "usage: sg_syn_flood --dst ADDR [--dport PORT] --src-from ADDR --src-to ADDR\n"
               "                    [--count N] [--max-seconds S] [--rate PPS] [--seed S] "
               "[--batch N]\n",
               why.c_str());
  std::exit(2);
}

// splitmix64: small, fast and good enough for addresses, ports and ISNs.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

bool lab4(in_addr a) {  // 198.18.0.0/15
  return (ntohl(a.s_addr) & 0xfffe0000u) == 0xc6120000u;
}
bool lab6(const in6_addr& a) {  // 2001:db8::/32
  static const uint8_t p[4] = {0x20, 0x01, 0x0d, 0xb8};
  return std::memcmp(a.s6_addr, p, 4) == 0;
}

uint64_t low64(const in6_addr& a) {
  uint64_t v = 0;
  for (int i = 8; i < 16; ++i) v = (v << 8) | a.s6_addr[i];
  return v;
}

uint64_t number(const char* name, const char* text, uint64_t lo, uint64_t hi) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
    usage(std::string("bad value for ") + name + ": " + text);
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  std::string dst, from, to;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(std::string("missing value for ") + std::string(a));
      return argv[++i];
    };
    if (a == "--dst") {
      dst = value();
    } else if (a == "--dport") {
      o.dport = static_cast<uint16_t>(number("--dport", value(), 1, 65535));
    } else if (a == "--src-from") {
      from = value();
    } else if (a == "--src-to") {
      to = value();
    } else if (a == "--count") {
      o.count = number("--count", value(), 1, 100'000'000);
    } else if (a == "--max-seconds") {
      o.max_seconds = static_cast<double>(number("--max-seconds", value(), 1, 3600));
    } else if (a == "--rate") {
      o.rate = number("--rate", value(), 0, 100'000'000);
    } else if (a == "--seed") {
      o.seed = number("--seed", value(), 0, UINT64_MAX);
    } else if (a == "--batch") {
      o.batch = static_cast<unsigned>(number("--batch", value(), 1, 1024));
    } else if (a == "-h" || a == "--help") {
      usage("a SYN flood for the smtpguard lab only");
    } else {
      usage("unknown argument " + std::string(a));
    }
  }
  if (dst.empty() || from.empty() || to.empty()) usage("--dst, --src-from and --src-to are needed");
  o.v6 = dst.find(':') != std::string::npos;
  if (o.v6) {
    if (inet_pton(AF_INET6, dst.c_str(), &o.dst6) != 1 ||
        inet_pton(AF_INET6, from.c_str(), &o.from6) != 1 ||
        inet_pton(AF_INET6, to.c_str(), &o.to6) != 1)
      usage("bad IPv6 address (all three must be IPv6)");
    if (!lab6(o.dst6) || !lab6(o.from6) || !lab6(o.to6))
      usage("refused: only lab addresses (2001:db8::/32)");
    if (std::memcmp(o.from6.s6_addr, o.to6.s6_addr, 8) != 0 || low64(o.from6) > low64(o.to6))
      usage("--src-from and --src-to must share the first 64 bits, from <= to");
  } else {
    if (inet_pton(AF_INET, dst.c_str(), &o.dst4) != 1 ||
        inet_pton(AF_INET, from.c_str(), &o.from4) != 1 ||
        inet_pton(AF_INET, to.c_str(), &o.to4) != 1)
      usage("bad IPv4 address (all three must be IPv4)");
    if (!lab4(o.dst4) || !lab4(o.from4) || !lab4(o.to4))
      usage("refused: only lab addresses (198.18.0.0/15)");
    if (ntohl(o.from4.s_addr) > ntohl(o.to4.s_addr)) usage("--src-from must be <= --src-to");
  }
  return o;
}

uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) acc += static_cast<uint32_t>(p[n - 1] << 8);
  return acc;
}
uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<uint16_t>(~acc & 0xffff);
}
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

// The TCP SYN at `t` (kTcpHeader bytes); the checksum is added by the caller.
void tcp_syn(uint8_t* t, uint16_t sport, uint16_t dport, uint32_t isn) {
  std::memset(t, 0, kTcpHeader);
  put16(t, sport);
  put16(t + 2, dport);
  put32(t + 4, isn);
  t[12] = static_cast<uint8_t>((kTcpHeader / 4) << 4);
  t[13] = 0x02;  // SYN
  put16(t + 14, 64240);
  t[20] = 2;  // MSS
  t[21] = 4;
  put16(t + 22, kMss);
}

// Builds one SYN into `pkt`, returns its length and fills the destination of the send.
size_t build(const Options& o, Rng& rng, uint8_t* pkt) {
  const uint64_t r = rng.next();
  const uint16_t sport = static_cast<uint16_t>(1024 + (r & 0xffff) % (65536 - 1024));
  const uint32_t isn = static_cast<uint32_t>(r >> 32);
  const uint64_t pick = rng.next();
  if (!o.v6) {
    const uint32_t lo = ntohl(o.from4.s_addr), hi = ntohl(o.to4.s_addr);
    const uint32_t src = lo + static_cast<uint32_t>(pick % (uint64_t{hi} - lo + 1));
    uint8_t* ip = pkt;
    std::memset(ip, 0, kIp4Header);
    ip[0] = 0x45;
    put16(ip + 2, static_cast<uint16_t>(kIp4Header + kTcpHeader));
    put16(ip + 4, static_cast<uint16_t>(pick >> 48));  // id
    ip[6] = 0x40;                                      // DF
    ip[8] = 64;
    ip[9] = IPPROTO_TCP;
    put32(ip + 12, src);
    std::memcpy(ip + 16, &o.dst4.s_addr, 4);
    put16(ip + 10, fold(sum16(ip, kIp4Header)));
    uint8_t* t = ip + kIp4Header;
    tcp_syn(t, sport, o.dport, isn);
    uint32_t acc = sum16(ip + 12, 8);  // pseudo-header: addresses, protocol, TCP length
    acc += IPPROTO_TCP + kTcpHeader;
    put16(t + 16, fold(sum16(t, kTcpHeader, acc)));
    return kIp4Header + kTcpHeader;
  }
  const uint64_t lo = low64(o.from6), hi = low64(o.to6);
  const uint64_t span = hi - lo;
  const uint64_t host = lo + (span == UINT64_MAX ? pick : pick % (span + 1));
  uint8_t* ip = pkt;
  std::memset(ip, 0, kIp6Header);
  ip[0] = 0x60;
  put16(ip + 4, static_cast<uint16_t>(kTcpHeader));
  ip[6] = IPPROTO_TCP;
  ip[7] = 64;
  std::memcpy(ip + 8, o.from6.s6_addr, 8);
  for (int i = 0; i < 8; ++i) ip[16 + 7 - i] = static_cast<uint8_t>(host >> (8 * i));
  std::memcpy(ip + 24, o.dst6.s6_addr, 16);
  uint8_t* t = ip + kIp6Header;
  tcp_syn(t, sport, o.dport, isn);
  uint32_t acc = sum16(ip + 8, 32);
  acc += IPPROTO_TCP + kTcpHeader;
  put16(t + 16, fold(sum16(t, kTcpHeader, acc)));
  return kIp6Header + kTcpHeader;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  const int fd =
      o.v6 ? ::socket(AF_INET6, SOCK_RAW, IPPROTO_RAW) : ::socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) {
    std::fprintf(stderr, "sg_syn_flood: raw socket: %s (needs CAP_NET_RAW)\n",
                 std::strerror(errno));
    return 1;
  }
  if (!o.v6) {
    const int on = 1;
    if (::setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &on, sizeof on) != 0) {
      std::fprintf(stderr, "sg_syn_flood: IP_HDRINCL: %s\n", std::strerror(errno));
      return 1;
    }
  }
  const int sndbuf = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  sockaddr_in to4{};
  to4.sin_family = AF_INET;
  to4.sin_addr = o.dst4;
  sockaddr_in6 to6{};
  to6.sin6_family = AF_INET6;
  to6.sin6_addr = o.dst6;
  // A raw IPv6 socket takes the port field as the protocol when it is non-zero; leave it 0.
  void* to = o.v6 ? static_cast<void*>(&to6) : static_cast<void*>(&to4);
  const socklen_t to_len = o.v6 ? sizeof to6 : sizeof to4;

  constexpr size_t kMaxPacket = kIp6Header + kTcpHeader;
  std::vector<uint8_t> buf(size_t{o.batch} * kMaxPacket);
  std::vector<iovec> iov(o.batch);
  std::vector<mmsghdr> msgs(o.batch);

  Rng rng{o.seed * 0x2545f4914f6cdd1dull + 1};
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(o.max_seconds));
  uint64_t sent = 0, errors = 0;
  const char* stopped = "count";
  while (sent < o.count) {
    if (g_stop) {
      stopped = "signal";
      break;
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      stopped = "time";
      break;
    }
    uint64_t n = std::min<uint64_t>(o.batch, o.count - sent);
    if (o.rate > 0) {
      // Pace: never ahead of rate * elapsed; sleep (bounded) until the next packet is due.
      const double elapsed = std::chrono::duration<double>(now - t0).count();
      const uint64_t due = static_cast<uint64_t>(elapsed * static_cast<double>(o.rate)) + 1;
      if (due <= sent) {
        const double wait = static_cast<double>(sent + 1) / static_cast<double>(o.rate) - elapsed;
        std::this_thread::sleep_for(std::chrono::duration<double>(std::min(wait, 0.01)));
        continue;
      }
      n = std::min(n, due - sent);
    }
    for (uint64_t i = 0; i < n; ++i) {
      uint8_t* p = buf.data() + i * kMaxPacket;
      iov[i].iov_base = p;
      iov[i].iov_len = build(o, rng, p);
      std::memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_name = to;
      msgs[i].msg_hdr.msg_namelen = to_len;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    uint64_t done = 0;
    while (done < n && !g_stop) {
      const int r = ::sendmmsg(fd, msgs.data() + done, static_cast<unsigned>(n - done), 0);
      if (r > 0) {
        done += static_cast<uint64_t>(r);
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      // ENOBUFS/EAGAIN: the device queue is full. Count it, back off briefly, try again.
      ++errors;
      if (Clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    sent += done;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf(
      "sg_syn_flood: sent %llu SYNs in %.2f s (%.0f pps), send errors %llu, stopped by %s\n",
      static_cast<unsigned long long>(sent), secs,
      secs > 0 ? static_cast<double>(sent) / secs : 0.0, static_cast<unsigned long long>(errors),
      stopped);
  ::close(fd);
  return sent > 0 ? 0 : 1;
}
