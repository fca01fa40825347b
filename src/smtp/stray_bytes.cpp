#include "smtp/stray_bytes.hpp"

#include "util/line_bytes.hpp"

namespace sg::smtp {

void StrayBytes::feed(uint64_t pos, std::span<const uint8_t> bytes, std::vector<uint64_t>& out) {
  const size_t n = bytes.size();
  size_t i = 0;
  if (cr_ && n > 0) {
    // The byte after the held CR decides it.
    if (bytes[0] == '\n') {
      i = 1;  // a CRLF pair: both stay
    } else {
      out.push_back(*cr_);
    }
    cr_.reset();
  }
  while (i < n) {
    // Ordinary bytes are the common case: skip them in bulk.
    i += find_line_byte(bytes.subspan(i));
    if (i == n) break;
    const uint8_t c = bytes[i];
    if (c == '\r') {
      if (i + 1 == n) {
        cr_ = pos + i;  // the next byte decides
        break;
      }
      if (bytes[i + 1] == '\n') {
        i += 2;
        continue;
      }
    }
    out.push_back(pos + i);  // a bare CR, a bare LF or a NUL
    ++i;
  }
}

bool StrayBytes::settle(std::vector<uint64_t>& out) {
  if (!cr_) return false;
  out.push_back(*cr_);
  cr_.reset();
  return true;
}

}  // namespace sg::smtp
