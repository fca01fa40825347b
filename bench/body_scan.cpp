// body_scan — the cost of the DATA body path per byte, with baselines in the same run: the
// end-of-data recogniser as it was (a byte-at-a-time state machine, kept here as the reference)
// against smtp::Session in a DATA body (memchr to the next CR), and smtp::BodyScanner against
// the BodyScanner before its bulk paths (tests/support/body_scanner_reference.cpp), over the
// same synthetic body fed in segments of --segment bytes: `--body text`, lines of printable text,
// CRLF, dot-stuffed lines now and then; `--body mime`, a multipart message whose attachment is
// base64 in 76-character lines. Both recognisers must end the body at the same byte, and both
// scanners must report the same events, or the run fails. Nothing touches the network.
//
//   sg_body_scan [--mb N] [--segment BYTES] [--rounds R] [--body text|mime]
//
// Prints one JSON object on stdout: the median over the rounds of each MB/s, and of the ratios
// session / baseline and scanner / old scanner taken within each round.
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
#include "support/body_scanner_reference.hpp"

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

// A text part and an attachment: the boundary is tracked, every body line is a candidate.
std::string make_mime_body(size_t bytes) {
  std::string b =
      "From: a@example.org\r\nTo: b@example.org\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"=_bench\"\r\n\r\n"
      "--=_bench\r\nContent-Type: text/plain\r\n\r\nsee the attachment\r\n"
      "--=_bench\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n"
      "Content-Disposition: attachment; filename=\"data.bin\"\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n";
  static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint32_t x = 12345;
  while (b.size() < bytes) {
    for (size_t k = 0; k < 76; ++k) {
      x = x * 1103515245u + 12345u;
      b += kB64[(x >> 16) & 63];
    }
    b += "\r\n";
  }
  b += "--=_bench--\r\n.\r\n";
  return b;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// One scanner over the whole body in segments; the events of all of them, for the comparison.
template <typename Scanner>
double time_scanner(std::span<const uint8_t> all, size_t segment,
                    std::vector<sg::smtp::BodyEvent>& kept) {
  const auto t = Clock::now();
  sg::smtp::BodyLimits limits;  // modern's: both line limits at 998
  limits.max_header_line = 998;
  limits.max_body_line = 998;
  Scanner scanner(limits);
  std::vector<sg::smtp::BodyEvent> events;
  for (size_t off = 0; off < all.size(); off += segment) {
    events.clear();
    scanner.feed(all.subspan(off, std::min(segment, all.size() - off)), events);
    kept.insert(kept.end(), events.begin(), events.end());
  }
  events.clear();
  scanner.finish(events);
  kept.insert(kept.end(), events.begin(), events.end());
  const double s = std::chrono::duration<double>(Clock::now() - t).count();
  return s;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  size_t mb = 64, segment = 1448, rounds = 5;
  std::string kind = "text";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const size_t v = std::strtoul(argv[i + 1], nullptr, 10);
    if (k == "--mb") mb = std::max<size_t>(v, 1);
    if (k == "--segment") segment = std::max<size_t>(v, 1);
    if (k == "--rounds") rounds = std::max<size_t>(v, 1);
    if (k == "--body") kind = argv[i + 1];
  }
  if (kind != "text" && kind != "mime") {
    std::fprintf(stderr, "--body: text or mime\n");
    return 2;
  }
  const std::string body = kind == "mime" ? make_mime_body(mb << 20) : make_body(mb << 20);
  const auto* data = reinterpret_cast<const uint8_t*>(body.data());
  const std::span<const uint8_t> all(data, body.size());
  const double mbytes = static_cast<double>(body.size()) / (1 << 20);
  std::vector<double> base_s, session_s, old_s, new_s, session_ratio, scanner_ratio;
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
    base_s.push_back(seconds_since(t));

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
    session_s.push_back(seconds_since(t));
    session_ratio.push_back(base_s.back() / session_s.back());
    if (sink.end - body_start != base_end || base_end != all.size()) {
      std::fprintf(stderr, "body ends differ: session %llu, baseline %zu, body %zu\n",
                   static_cast<unsigned long long>(sink.end - body_start), base_end, all.size());
      return 1;
    }

    // The old scanner and the new one, in alternating order from round to round.
    std::vector<sg::smtp::BodyEvent> old_events, new_events;
    double t_old = 0, t_new = 0;
    if (r % 2 == 0) {
      t_old = time_scanner<sg::smtp::reference::BodyScanner>(all, segment, old_events);
      t_new = time_scanner<sg::smtp::BodyScanner>(all, segment, new_events);
    } else {
      t_new = time_scanner<sg::smtp::BodyScanner>(all, segment, new_events);
      t_old = time_scanner<sg::smtp::reference::BodyScanner>(all, segment, old_events);
    }
    if (old_events != new_events || new_events.empty()) {
      std::fprintf(stderr, "scanner events differ: old %zu, new %zu\n", old_events.size(),
                   new_events.size());
      return 1;
    }
    old_s.push_back(t_old);
    new_s.push_back(t_new);
    scanner_ratio.push_back(t_old / t_new);
  }
  std::printf(
      "{\"body\": \"%s\", \"body_mb\": %.1f, \"segment\": %zu, \"rounds\": %zu, "
      "\"baseline_mb_s\": %.0f, \"session_mb_s\": %.0f, \"session_speedup\": %.2f, "
      "\"old_body_scanner_mb_s\": %.0f, \"body_scanner_mb_s\": %.0f, "
      "\"body_scanner_speedup\": %.2f, \"body_scanner_speedup_min\": %.2f, "
      "\"body_scanner_speedup_max\": %.2f}\n",
      kind.c_str(), mbytes, segment, rounds, mbytes / median(base_s), mbytes / median(session_s),
      median(session_ratio), mbytes / median(old_s), mbytes / median(new_s), median(scanner_ratio),
      *std::min_element(scanner_ratio.begin(), scanner_ratio.end()),
      *std::max_element(scanner_ratio.begin(), scanner_ratio.end()));
  return 0;
}
