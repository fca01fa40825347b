#pragma once
// Finding the bytes that end or break a line of mail - CR, LF and NUL - many bytes at a time.
// Everything between two of them is counted, never looked at one by one, so this is the loop
// the bytes of a message body spend their time in. Two ways, same answers: 16 bytes per step
// with SSE2 (baseline on x86-64), 8 per step in portable C++ (SWAR: the "has a zero byte"
// test of each 64-bit word, against each of the three bytes). Both are exposed so that the tests
// hold each to the byte-at-a-time definition, whichever the build uses.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sg {

inline bool is_line_byte(uint8_t c) {
  return c == '\r' || c == '\n' || c == 0;
}

// The index of the first CR, LF or NUL in `bytes`, or bytes.size(): byte by byte.
inline size_t find_line_byte_bytewise(std::span<const uint8_t> bytes) {
  size_t i = 0;
  while (i < bytes.size() && !is_line_byte(bytes[i])) ++i;
  return i;
}

// The same, a 64-bit word at a time.
inline size_t find_line_byte_swar(std::span<const uint8_t> bytes) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  // A high bit for every zero byte of v; above the lowest zero byte a 0x01 byte may show up as
  // zero too (the borrow), below it never: the lowest bit set is exact.
  const auto zero_bytes = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const uint8_t* p = bytes.data();
  const size_t n = bytes.size();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    const uint64_t hit =
        zero_bytes(w) | zero_bytes(w ^ (kOnes * '\r')) | zero_bytes(w ^ (kOnes * '\n'));
    if (hit == 0) continue;
    if constexpr (std::endian::native == std::endian::little) {
      return i + static_cast<size_t>(std::countr_zero(hit)) / 8;
    } else {
      break;  // the byte loop below finds it in this word
    }
  }
  return i + find_line_byte_bytewise(bytes.subspan(i));
}

#if defined(__SSE2__)
// The same, 16 bytes at a time.
inline size_t find_line_byte_sse2(std::span<const uint8_t> bytes) {
  const uint8_t* p = bytes.data();
  const size_t n = bytes.size();
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i nul = _mm_setzero_si128();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)),
                                     _mm_cmpeq_epi8(v, nul));
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(hit));
    if (mask != 0) return i + static_cast<size_t>(std::countr_zero(mask));
  }
  return i + find_line_byte_swar(bytes.subspan(i));
}
#endif

// The index of the first CR, LF or NUL in `bytes`, or bytes.size(): the fastest way built in.
inline size_t find_line_byte(std::span<const uint8_t> bytes) {
#if defined(__SSE2__)
  return find_line_byte_sse2(bytes);
#else
  return find_line_byte_swar(bytes);
#endif
}

}  // namespace sg
