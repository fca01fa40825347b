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
  std::string_view view() const noexcept { return {buf_.data(), len_}; }

 private:
  std::array<char, N> buf_{};
  size_t len_ = 0;
};

}  // namespace sg::eventlog
