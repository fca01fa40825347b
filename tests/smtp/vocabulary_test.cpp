#include "smtp/vocabulary.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace sg::smtp;

TEST_CASE("command words split as servers split them", "[vocabulary][verb]") {
  struct Case {
    std::string line;
    size_t from;
    size_t start;
    std::string text;
    bool terminated;
  };
  // Postfix (ISSPACE) and Sendmail (isspace) skip blanks before the verb; SP, HT, VT and FF end
  // a word, and so do CR and LF (the line ends).
  const Case c = GENERATE(values<Case>({
      {"VRFY postmaster\r\n", 0, 0, "VRFY", true},
      {" VRFY postmaster\r\n", 0, 1, "VRFY", true},
      {"\tVRFY postmaster\r\n", 0, 1, "VRFY", true},
      {"EXPN\vroot\r\n", 0, 0, "EXPN", true},
      {"TURN\f\r\n", 0, 0, "TURN", true},
      {"QUIT\r\n", 0, 0, "QUIT", true},
      {"QUIT\n", 0, 0, "QUIT", true},
      {"QUI", 0, 0, "QUI", false},  // partial: could still become QUITX
      {"  ", 0, 2, "", false},      // only blanks so far
      {"", 0, 0, "", false},
      {"BDAT\t12\tLAST\r\n", 4, 5, "12", true},
      {"BDAT\t12\tLAST\r\n", 7, 8, "LAST", true},
      {"BDAT 12 LAST \r\n", 12, 15, "", false},
      {"AUTH PLAIN", 99, 10, "", false},
  }));
  INFO(c.line << " from " << c.from);
  const CommandToken t = command_token(c.line, c.from);
  CHECK(t.start == c.start);
  CHECK(t.text == c.text);
  CHECK(t.terminated == c.terminated);
  CHECK(t.end() == c.start + c.text.size());
}

TEST_CASE("the blank set is Postfix's ISSPACE", "[vocabulary][verb]") {
  for (int c = 0; c < 256; ++c) {
    const bool blank = c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' || c == '\n';
    CHECK(is_command_blank(static_cast<char>(c)) == blank);
  }
  CHECK(parse_verb(command_verb("\f\vSTARTTLS\f").text) == Verb::kStarttls);
}
