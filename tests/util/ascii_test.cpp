#include "util/ascii.hpp"

#include <catch2/catch.hpp>
#include <string>

namespace sg {
namespace {

// Every byte, once, against the set a class is documented to accept.
template <typename Pred>
std::string accepted(Pred pred) {
  std::string out;
  for (int b = 0; b < 256; ++b)
    if (pred(static_cast<char>(b))) out += static_cast<char>(b);
  return out;
}

TEST_CASE("white-space classes accept exactly the bytes their names say", "[util][ascii]") {
  CHECK(accepted(is_sp_or_htab) == "\t ");
  CHECK(accepted(is_sp_htab_cr_lf) == "\t\n\r ");
  CHECK(accepted(is_sp_htab_vt_ff) == "\t\v\f ");
  CHECK(accepted(is_ascii_space) == "\t\n\v\f\r ");
}

TEST_CASE("letters, digits and visible characters are ASCII only", "[util][ascii]") {
  CHECK(accepted(is_digit) == "0123456789");
  CHECK(accepted(is_alpha) == "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
  CHECK(accepted(is_alnum) == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
  std::string vchar;
  for (char c = '!'; c <= '~'; ++c) vchar += c;
  CHECK(accepted(is_vchar) == vchar);
  CHECK(accepted(is_printable) == " " + vchar);
  // Latin-1 letters, DEL and the controls are none of these, whatever the locale says.
  for (const char c : std::string("\xe9\xc9\x7f\x00\x1f\x80\xff", 7)) {
    CHECK_FALSE(is_alpha(c));
    CHECK_FALSE(is_vchar(c));
    CHECK_FALSE(is_printable(c));
    CHECK_FALSE(is_ascii_space(c));
  }
}

TEST_CASE("hexadecimal digits in either case", "[util][ascii]") {
  struct Case {
    char c;
    int value;
  };
  const Case k = GENERATE(values<Case>({
      {'0', 0},
      {'9', 9},
      {'a', 10},
      {'f', 15},
      {'A', 10},
      {'F', 15},
      {'g', -1},
      {'G', -1},
      {' ', -1},
      {'/', -1},
      {':', -1},
      {'@', -1},
      {'`', -1},
  }));
  CAPTURE(k.c);
  CHECK(hex_digit_value(k.c) == k.value);
}

TEST_CASE("case folding touches ASCII letters only", "[util][ascii]") {
  CHECK(to_upper(std::string_view("mail FROM:<a@b.example> size=10")) ==
        "MAIL FROM:<A@B.EXAMPLE> SIZE=10");
  CHECK(to_upper(std::string_view("\xe9t\xe9")) == "\xe9T\xe9");
  CHECK(to_lower('Q') == 'q');
  CHECK(to_lower('q') == 'q');
  CHECK(to_lower('[') == '[');  // the byte after 'Z'
  CHECK(to_lower('@') == '@');  // the byte before 'A'
  CHECK(to_upper('{') == '{');  // the byte after 'z'
  CHECK(to_upper('`') == '`');  // the byte before 'a'
}

TEST_CASE("iequals and istarts_with ignore the case of ASCII letters only", "[util][ascii]") {
  struct Case {
    std::string a, b;
    bool equal;
  };
  const Case k = GENERATE(values<Case>({
      {"STARTTLS", "starttls", true},
      {"StartTls", "sTARTtLS", true},
      {"Content-Type", "content-type", true},
      {"", "", true},
      {"LAST", "LAS", false},
      {"LAST", "LASTX", false},
      {"@", "`", false},  // 0x40 and 0x60 differ by the case bit but are not letters
      {"[", "{", false},
      {"\xc9", "\xe9", false},  // Latin-1 E-acute in both cases: not ASCII letters
  }));
  CAPTURE(k.a, k.b);
  CHECK(iequals(k.a, k.b) == k.equal);
  CHECK(iequals(k.b, k.a) == k.equal);
}

TEST_CASE("istarts_with", "[util][ascii]") {
  CHECK(istarts_with("multipart/mixed; boundary=x", "Multipart/"));
  CHECK(istarts_with("STARTTLS", "start"));
  CHECK(istarts_with("STARTTLS", ""));
  CHECK(istarts_with("STARTTLS", "starttls"));
  CHECK_FALSE(istarts_with("STARTTLS", "starttlsx"));
  CHECK_FALSE(istarts_with("STA", "STAR"));
  CHECK_FALSE(istarts_with("STARTTLS", "tls"));
}

}  // namespace
}  // namespace sg
