// find_line_byte: every way (SSE2, SWAR, the one built in) agrees with the byte-at-a-time
// definition for a CR, LF or NUL at every position of every buffer up to 3 words long, from every
// alignment, next to the bytes a word-at-a-time test could mistake for them.
#include "util/line_bytes.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using sg::find_line_byte;
using sg::find_line_byte_bytewise;
using sg::find_line_byte_swar;

namespace {

std::span<const uint8_t> bytes_of(const std::vector<uint8_t>& v, size_t from, size_t n) {
  return std::span<const uint8_t>(v).subspan(from, n);
}

// Every implementation's answer for `s`, checked against the byte loop.
void check_all(std::span<const uint8_t> s) {
  const size_t want = find_line_byte_bytewise(s);
  CHECK(find_line_byte_swar(s) == want);
#if defined(__SSE2__)
  CHECK(sg::find_line_byte_sse2(s) == want);
#endif
  CHECK(find_line_byte(s) == want);
}

}  // namespace

TEST_CASE("the byte loop is the definition", "[line_bytes]") {
  const std::string s = "abc\rdef";
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  CHECK(find_line_byte_bytewise({p, s.size()}) == 3);
  CHECK(find_line_byte_bytewise({p, 3}) == 3);
  CHECK(find_line_byte_bytewise({p, 0}) == 0);
}

TEST_CASE("one CR, LF or NUL at every position, every length, every alignment", "[line_bytes]") {
  // Fillers next to the searched bytes: 0x01 (the borrow of a zero byte), 0x0c/0x0e and 0x0b
  // (one bit from CR or LF), 0x80 and 0xff (high bits), 0x8d/0x8a (CR/LF with the high bit).
  const uint8_t filler =
      GENERATE(as<uint8_t>{}, 'a', 0x01, 0x0b, 0x0c, 0x0e, 0x80, 0x8a, 0x8d, 0xff);
  const uint8_t special = GENERATE(as<uint8_t>{}, '\r', '\n', 0);
  std::vector<uint8_t> buf(64 + 16);
  for (size_t align = 0; align < 16; ++align) {
    for (size_t len = 0; len <= 48; ++len) {
      std::fill(buf.begin(), buf.end(), filler);
      check_all(bytes_of(buf, align, len));  // none
      for (size_t at = 0; at < len; ++at) {
        std::fill(buf.begin(), buf.end(), filler);
        buf[align + at] = special;
        check_all(bytes_of(buf, align, len));
        // A second one after it: the first one found.
        if (at + 1 < len) {
          buf[align + len - 1] = '\n';
          check_all(bytes_of(buf, align, len));
        }
      }
    }
  }
}

TEST_CASE("a byte beyond the end is not found", "[line_bytes]") {
  std::vector<uint8_t> buf(40, 'x');
  buf[20] = '\r';
  for (size_t len = 0; len <= 20; ++len) {
    CHECK(find_line_byte_swar(bytes_of(buf, 0, len)) == len);
    CHECK(find_line_byte(bytes_of(buf, 0, len)) == len);
  }
  CHECK(find_line_byte(bytes_of(buf, 0, 21)) == 20);
}

TEST_CASE("random buffers", "[line_bytes]") {
  uint32_t x = 7;
  std::vector<uint8_t> buf(300);
  for (int round = 0; round < 2000; ++round) {
    for (auto& b : buf) {
      x = x * 1103515245u + 12345u;
      // Mostly printable, one in ~97 a searched byte; the rest anything.
      const uint32_t r = (x >> 16) % 97;
      b = r == 0 ? "\r\n"[(x >> 8) & 1] : r == 1 ? 0 : static_cast<uint8_t>(x >> 24 | 1);
      if (b == '\r' || b == '\n') b = (r <= 1) ? b : 'q';
    }
    x = x * 1103515245u + 12345u;
    const size_t from = (x >> 16) % 32;
    check_all(bytes_of(buf, from, buf.size() - from));
  }
}
