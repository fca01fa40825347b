#pragma once
// ASCII byte classes and case folding, declared once. SMTP, MIME and the probe's protocols are
// ASCII: nothing here consults the C locale, and a byte from 0x80 up is never a letter, a digit
// or a space. White space comes in several sets, and each protocol rule means one of them: the
// names say exactly which bytes each accepts.
#include <string>
#include <string_view>

namespace sg {

inline bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
inline bool is_alpha(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
inline bool is_alnum(char c) {
  return is_digit(c) || is_alpha(c);
}
// The value of a hexadecimal digit (either case), or -1.
inline int hex_digit_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 5234 VCHAR: 0x21-0x7e, the visible characters (no space, no controls, no DEL).
inline bool is_vchar(char c) {
  return c > ' ' && c < 0x7f;
}
// SP or VCHAR: 0x20-0x7e, what isprint() accepts in the C locale.
inline bool is_printable(char c) {
  return c >= ' ' && c < 0x7f;
}

// RFC 5234 WSP: SP and HTAB.
inline bool is_sp_or_htab(char c) {
  return c == ' ' || c == '\t';
}
// SP, HTAB, CR and LF.
inline bool is_sp_htab_cr_lf(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
// SP, HTAB, VT and FF: isspace() in the C locale without the line ends CR and LF.
inline bool is_sp_htab_vt_ff(char c) {
  return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}
// SP, HTAB, LF, VT, FF and CR: isspace() in the C locale.
inline bool is_ascii_space(char c) {
  return is_sp_htab_vt_ff(c) || c == '\r' || c == '\n';
}

inline char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
inline char to_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}
inline std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_upper(c);
  return out;
}

// Equal but for the case of ASCII letters.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  return true;
}
// `text` begins with `prefix`, but for the case of ASCII letters.
inline bool istarts_with(std::string_view text, std::string_view prefix) {
  return prefix.size() <= text.size() && iequals(text.substr(0, prefix.size()), prefix);
}

}  // namespace sg
