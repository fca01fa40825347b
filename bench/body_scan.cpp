// body_scan — the cost of the DATA body path per byte, with a baseline in the same run: the
// end-of-data recogniser as it was (a byte-at-a-time state machine, kept here as the reference)
// against smtp::Session in a DATA body (memchr to the next CR), and smtp::BodyScanner, over the
// same synthetic body (lines of printable text, CRLF, dot-stuffed lines now and then) fed in
// segments of --segment bytes. Both recognisers must end the body at the same byte, or the run
// fails. Nothing touches the network.
//
//   sg_body_scan [--mb N] [--segment BYTES] [--rounds R]
//
// Prints one JSON object on stdout: MB/s of each and the ratio session / baseline.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "smtp/body_scanner.hpp"
#include "smtp/session.hpp"

namespace {

using Clock = std::chrono::steady_clock;

// The recogniser of Session::feed_body before the memchr fast path, byte for byte.
struct Baseline {
  uint8_t state = 2;
  // Returns the bytes consumed (up to and including CRLF.CRLF), or all of them.
  size_t feed(std::span<const uint8_t> bytes) {
    for (size_t i = 0; i < bytes.size(); ++i) {
      const uint8_t c = bytes[i];
      switch (state) {
        case 0:
          state = c == '\r' ? 1 : 0;
          break;
        case 1:
          state = c == '\n' ? 2 : (c == '\r' ? 1 : 0);
          break;
        case 2:
          state = c == '.' ? 3 : (c == '\r' ? 1 : 0);
          break;
        case 3:
          state = c == '\r' ? 4 : 0;
          break;
        case 4:
          if (c == '\n') return i + 1;
          state = c == '\r' ? 1 : 0;
          break;
      }
    }
    return bytes.size();
  }
};

// A sink that counts the message bytes and notes the end.
class Sink : public sg::smtp::SessionSink {
 public:
  sg::smtp::CommandFate on_command(const sg::smtp::CommandLine&) override {
    return sg::smtp::CommandFate::kForwarded;
  }
  void on_reply(const sg::smtp::ReplyLine&) override {}
  void on_body_end(uint64_t pos) override { end = pos; }
  uint64_t end = 0;
};

std::string make_body(size_t bytes) {
  std::string b = "Subject: bench\r\n\r\n";
  uint32_t x = 12345;
  while (b.size() < bytes) {
    x = x * 1103515245u + 12345u;
    const size_t len = 20 + (x >> 16) % 60;
    if ((x >> 8) % 50 == 0) b += '.';  // a dot-stuffed line
    for (size_t k = 0; k < len; ++k) b += static_cast<char>('a' + (x >> (k % 16)) % 26);
    b += "\r\n";
  }
  b += ".\r\n";
  return b;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  size_t mb = 64, segment = 1448, rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const size_t v = std::strtoul(argv[i + 1], nullptr, 10);
    if (k == "--mb") mb = std::max<size_t>(v, 1);
    if (k == "--segment") segment = std::max<size_t>(v, 1);
    if (k == "--rounds") rounds = std::max<size_t>(v, 1);
  }
  const std::string body = make_body(mb << 20);
  const auto* data = reinterpret_cast<const uint8_t*>(body.data());
  const std::span<const uint8_t> all(data, body.size());
  double best_base = 1e9, best_session = 1e9, best_scanner = 1e9;
  for (size_t r = 0; r < rounds; ++r) {
    // Baseline.
    auto t = Clock::now();
    Baseline base;
    size_t base_end = 0;
    for (size_t off = 0; off < all.size(); off += segment) {
      const auto piece = all.subspan(off, std::min(segment, all.size() - off));
      const size_t used = base.feed(piece);
      if (used < piece.size() || off + used == all.size()) {
        base_end = off + used;
        break;
      }
    }
    best_base = std::min(best_base, seconds_since(t));

    // Session in a DATA body.
    sg::smtp::Session session;
    Sink sink;
    uint64_t cpos = 0, spos = 0;
    auto server = [&](const std::string& s) {
      spos += session.feed(sg::smtp::Dir::kServerToClient, spos,
                           {reinterpret_cast<const uint8_t*>(s.data()), s.size()}, sink);
    };
    auto client = [&](const std::string& s) {
      cpos += session.feed(sg::smtp::Dir::kClientToServer, cpos,
                           {reinterpret_cast<const uint8_t*>(s.data()), s.size()}, sink);
    };
    server("220 x\r\n");
    for (const char* c : {"EHLO c\r\n", "MAIL FROM:<a@b>\r\n", "RCPT TO:<c@d>\r\n", "DATA\r\n"}) {
      client(c);
      server(std::string(c).rfind("DATA", 0) == 0 ? "354 go\r\n" : "250 ok\r\n");
    }
    const uint64_t body_start = cpos;
    t = Clock::now();
    for (size_t off = 0; off < all.size() && sink.end == 0; off += segment) {
      const auto piece = all.subspan(off, std::min(segment, all.size() - off));
      cpos += session.feed(sg::smtp::Dir::kClientToServer, cpos, piece, sink);
    }
    best_session = std::min(best_session, seconds_since(t));
    if (sink.end - body_start != base_end || base_end != all.size()) {
      std::fprintf(stderr, "body ends differ: session %llu, baseline %zu, body %zu\n",
                   static_cast<unsigned long long>(sink.end - body_start), base_end, all.size());
      return 1;
    }

    // BodyScanner with modern's limits.
    t = Clock::now();
    sg::smtp::BodyLimits limits;
    limits.max_header_line = 998;
    limits.max_body_line = 998;
    sg::smtp::BodyScanner scanner(limits);
    std::vector<sg::smtp::BodyEvent> events;
    for (size_t off = 0; off < all.size(); off += segment) {
      events.clear();
      scanner.feed(all.subspan(off, std::min(segment, all.size() - off)), events);
    }
    best_scanner = std::min(best_scanner, seconds_since(t));
  }
  const double mbytes = static_cast<double>(body.size()) / (1 << 20);
  std::printf(
      "{\"body_mb\": %.1f, \"segment\": %zu, \"baseline_mb_s\": %.0f, \"session_mb_s\": %.0f, "
      "\"session_speedup\": %.2f, \"body_scanner_mb_s\": %.0f}\n",
      mbytes, segment, mbytes / best_base, mbytes / best_session, best_base / best_session,
      mbytes / best_scanner);
  return 0;
}
