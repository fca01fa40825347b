#pragma once
// Serial-number arithmetic on 32-bit TCP sequence numbers (RFC 1982), in the kernel's vocabulary.
#include <cstdint>

namespace sg {

inline bool seq_before(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}
inline bool seq_after(uint32_t a, uint32_t b) {
  return seq_before(b, a);
}
inline bool seq_before_eq(uint32_t a, uint32_t b) {
  return !seq_after(a, b);
}
inline bool seq_after_eq(uint32_t a, uint32_t b) {
  return !seq_before(a, b);
}

}  // namespace sg
