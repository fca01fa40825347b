#pragma once
// A line of at most N characters built in place: what the decision log's key=value and JSON
// lines are written into. Appends past N are cut, never allocated, never thrown: the log runs on
// the workers' threads.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "util/ascii.hpp"

namespace sg::eventlog {

template <size_t N>
class FixedText {
 public:
  void append(std::string_view s) noexcept {
    const size_t n = std::min(s.size(), N - len_);
    std::copy_n(s.data(), n, buf_.data() + len_);
    len_ += n;
  }
  void append(uint64_t n) noexcept {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof(digits), n);
    append(std::string_view(digits, static_cast<size_t>(r.ptr - digits)));
  }
  // At most `cap` bytes of `value` as the key=value log writes them: printable ASCII stays,
  // `"` and `\` get a `\`, any other byte is `\xNN`; `...` after a value that was cut.
  void append_escaped(std::string_view value, size_t cap) noexcept {
    static constexpr char kHex[] = "0123456789abcdef";
    const bool cut = value.size() > cap;
    if (cut) value = value.substr(0, cap);
    for (char ch : value) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        const char esc[2] = {'\\', ch};
        append(std::string_view(esc, 2));
      } else if (is_printable(ch)) {
        append(std::string_view(&ch, 1));
      } else {
        const char esc[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
        append(std::string_view(esc, 4));
      }
    }
    if (cut) append("...");
  }
  std::string_view view() const noexcept { return {buf_.data(), len_}; }

 private:
  std::array<char, N> buf_{};
  size_t len_ = 0;
};

}  // namespace sg::eventlog
