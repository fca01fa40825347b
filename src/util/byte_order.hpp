#pragma once
// Network byte order (big-endian) fields inside packet buffers, declared once. Offsets are byte
// offsets into the span; the caller has checked the bounds (span indexing is unchecked).
#include <cstddef>
#include <cstdint>
#include <span>

namespace sg {

inline uint16_t load_be16(std::span<const uint8_t> b, size_t off) {
  return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}

inline uint32_t load_be32(std::span<const uint8_t> b, size_t off) {
  return static_cast<uint32_t>(b[off]) << 24 | static_cast<uint32_t>(b[off + 1]) << 16 |
         static_cast<uint32_t>(b[off + 2]) << 8 | static_cast<uint32_t>(b[off + 3]);
}

inline void store_be16(std::span<uint8_t> b, size_t off, uint16_t x) {
  b[off] = static_cast<uint8_t>(x >> 8);
  b[off + 1] = static_cast<uint8_t>(x);
}

inline void store_be32(std::span<uint8_t> b, size_t off, uint32_t x) {
  b[off] = static_cast<uint8_t>(x >> 24);
  b[off + 1] = static_cast<uint8_t>(x >> 16);
  b[off + 2] = static_cast<uint8_t>(x >> 8);
  b[off + 3] = static_cast<uint8_t>(x);
}

}  // namespace sg
