// MAIL FROM / RCPT TO argument parsing and the glob matcher: readable vectors for each form real
// clients send, each kind of garbage, and the special-character check.
#include "smtp/mail_params.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

using namespace sg::smtp;

namespace {

struct Valid {
  const char* what;
  std::string line;
  Verb verb;
  const char* address;
  const char* domain;
  const char* route;
  bool brackets;
  std::optional<uint64_t> size;
};

}  // namespace

TEST_CASE("well-formed and tolerated paths", "[mail_params]") {
  const auto v = GENERATE(values<Valid>({
      {"RFC 5321", "MAIL FROM:<alice@example.org>\r\n", Verb::kMail, "alice@example.org",
       "example.org", "", true, std::nullopt},
      {"recipient", "RCPT TO:<bob@example.net>\r\n", Verb::kRcpt, "bob@example.net", "example.net",
       "", true, std::nullopt},
      {"lower case verb and keyword", "mail from:<a@b.example>\r\n", Verb::kMail, "a@b.example",
       "b.example", "", true, std::nullopt},
      {"space after the colon", "MAIL FROM: <a@b.example>\r\n", Verb::kMail, "a@b.example",
       "b.example", "", true, std::nullopt},
      {"space before the colon", "RCPT TO : <a@b.example>\r\n", Verb::kRcpt, "a@b.example",
       "b.example", "", true, std::nullopt},
      {"no line ending", "MAIL FROM:<a@b.example>", Verb::kMail, "a@b.example", "b.example", "",
       true, std::nullopt},
      {"bare LF ending", "MAIL FROM:<a@b.example>\n", Verb::kMail, "a@b.example", "b.example", "",
       true, std::nullopt},
      {"no brackets (Postfix tolerates it)", "MAIL FROM:a@b.example\r\n", Verb::kMail,
       "a@b.example", "b.example", "", false, std::nullopt},
      {"no brackets, parameters follow", "MAIL FROM: a@b.example SIZE=10\r\n", Verb::kMail,
       "a@b.example", "b.example", "", false, 10},
      {"null sender", "MAIL FROM:<>\r\n", Verb::kMail, "", "", "", true, std::nullopt},
      {"null sender with SIZE", "MAIL FROM:<> SIZE=0\r\n", Verb::kMail, "", "", "", true, 0},
      {"postmaster without domain", "RCPT TO:<Postmaster>\r\n", Verb::kRcpt, "Postmaster", "", "",
       true, std::nullopt},
      {"parameters", "MAIL FROM:<a@b.example> SIZE=12345 BODY=8BITMIME SMTPUTF8\r\n", Verb::kMail,
       "a@b.example", "b.example", "", true, 12345},
      {"runs of spaces between parameters", "MAIL FROM:<a@b.example>  SIZE=7   BODY=7BIT  \r\n",
       Verb::kMail, "a@b.example", "b.example", "", true, 7},
      {"largest SIZE", "MAIL FROM:<a@b.example> SIZE=18446744073709551615\r\n", Verb::kMail,
       "a@b.example", "b.example", "", true, UINT64_MAX},
      {"quoted local part with escapes", "MAIL FROM:<\"john \\\"jd\\\" doe\"@example.org>\r\n",
       Verb::kMail, "\"john \\\"jd\\\" doe\"@example.org", "example.org", "", true, std::nullopt},
      {"quoted local part holding > and @", "RCPT TO:<\"a>b@c\"@example.org>\r\n", Verb::kRcpt,
       "\"a>b@c\"@example.org", "example.org", "", true, std::nullopt},
      {"source route", "RCPT TO:<@a.example,@b.example:user@c.example>\r\n", Verb::kRcpt,
       "user@c.example", "c.example", "@a.example,@b.example", true, std::nullopt},
      {"one-hop source route", "MAIL FROM:<@relay.example:u@d.example>\r\n", Verb::kMail,
       "u@d.example", "d.example", "@relay.example", true, std::nullopt},
      {"the last @ decides the domain", "RCPT TO:<a@evil.example@good.example>\r\n", Verb::kRcpt,
       "a@evil.example@good.example", "good.example", "", true, std::nullopt},
      {"UTF-8 address", "RCPT TO:<j\xc3\xb6rg@b\xc3\xbc.example> SMTPUTF8\r\n", Verb::kRcpt,
       "j\xc3\xb6rg@b\xc3\xbc.example", "b\xc3\xbc.example", "", true, std::nullopt},
  }));
  INFO(v.what);
  const MailParams r = parse_mail_params(v.line);
  CHECK(to_string(r.status) == "ok");
  CHECK(r.verb == v.verb);
  CHECK(r.address == v.address);
  CHECK(r.domain == v.domain);
  CHECK(r.source_route == v.route);
  CHECK(r.brackets == v.brackets);
  CHECK(r.declared_size == v.size);
  CHECK(r.null_path == r.address.empty());
  CHECK_FALSE(r.special_chars);
}

TEST_CASE("ESMTP parameters are kept and the known ones read", "[mail_params]") {
  const MailParams r =
      parse_mail_params("MAIL FROM:<a@b.example> SIZE=12345 BODY=8BITMIME SMTPUTF8 RET=HDRS\r\n");
  REQUIRE(r.status == MailParamStatus::kOk);
  CHECK(r.parameters == "SIZE=12345 BODY=8BITMIME SMTPUTF8 RET=HDRS");
  CHECK(r.declared_size == 12345u);
  CHECK(r.body == "8BITMIME");
  CHECK(r.smtputf8);
  CHECK(r.local_part == "a");
  const MailParams lower = parse_mail_params("MAIL FROM:<a@b.example> size=5 smtputf8\r\n");
  CHECK(lower.declared_size == 5u);
  CHECK(lower.smtputf8);
}

namespace {

struct Garbage {
  const char* what;
  std::string line;
  MailParamStatus status;
};

}  // namespace

TEST_CASE("garbage gets a status, never an exception", "[mail_params]") {
  using S = MailParamStatus;
  const auto v = GENERATE(values<Garbage>({
      {"another verb", "HELO mx.example\r\n", S::kNotMailOrRcpt},
      {"empty line", "", S::kNotMailOrRcpt},
      {"MAIL without FROM", "MAIL <a@b.example>\r\n", S::kNotMailOrRcpt},
      {"MAIL TO", "MAIL TO:<a@b.example>\r\n", S::kNotMailOrRcpt},
      {"RCPT FROM", "RCPT FROM:<a@b.example>\r\n", S::kNotMailOrRcpt},
      {"no colon", "MAIL FROM <a@b.example>\r\n", S::kNotMailOrRcpt},
      {"verb glued to keyword", "MAILFROM:<a@b.example>\r\n", S::kNotMailOrRcpt},
      {"nothing after the colon", "MAIL FROM:\r\n", S::kMissingPath},
      {"only spaces after the colon", "RCPT TO:   \r\n", S::kMissingPath},
      {"no closing bracket", "MAIL FROM:<a@b.example\r\n", S::kUnterminatedPath},
      {"no closing quote", "MAIL FROM:<\"a@b.example>\r\n", S::kUnterminatedQuote},
      {"no closing quote, unbracketed", "MAIL FROM:\"a@b.example\r\n", S::kUnterminatedQuote},
      {"nested brackets", "MAIL FROM:<<a@b.example>>\r\n", S::kBadBrackets},
      {"unbracketed with a bracket", "MAIL FROM:a@b.example>\r\n", S::kBadBrackets},
      {"route without colon", "RCPT TO:<@a.example,@b.example>\r\n", S::kBadSourceRoute},
      {"route element without @", "RCPT TO:<@a.example,b.example:u@c.example>\r\n",
       S::kBadSourceRoute},
      {"empty route element", "RCPT TO:<@a.example,:u@c.example>\r\n", S::kBadSourceRoute},
      {"route without mailbox", "RCPT TO:<@a.example:>\r\n", S::kBadSourceRoute},
      {"text glued to the bracket", "MAIL FROM:<a@b.example>SIZE=1\r\n", S::kJunkAfterPath},
      {"parameter without keyword", "MAIL FROM:<a@b.example> =1\r\n", S::kBadParameter},
      {"keyword with a bad character", "MAIL FROM:<a@b.example> SI_ZE=1\r\n", S::kBadParameter},
      {"empty value", "MAIL FROM:<a@b.example> BODY=\r\n", S::kBadParameter},
      {"control byte in a value", "MAIL FROM:<a@b.example> ENVID=a\x01z\r\n", S::kBadParameter},
      {"SIZE not a number", "MAIL FROM:<a@b.example> SIZE=12k\r\n", S::kBadSize},
      {"SIZE without value", "MAIL FROM:<a@b.example> SIZE\r\n", S::kBadSize},
      {"SIZE negative", "MAIL FROM:<a@b.example> SIZE=-1\r\n", S::kBadSize},
      {"SIZE overflows 64 bits", "MAIL FROM:<a@b.example> SIZE=18446744073709551616\r\n",
       S::kBadSize},
      {"SIZE of 21 digits", "MAIL FROM:<a@b.example> SIZE=000000000000000000001\r\n", S::kBadSize},
      {"SIZE given twice", "MAIL FROM:<a@b.example> SIZE=1 SIZE=999999999\r\n", S::kBadSize},
  }));
  INFO(v.what);
  const MailParams r = parse_mail_params(v.line);
  CHECK(to_string(r.status) == to_string(v.status));
}

TEST_CASE("what was parsed before the garbage stays set", "[mail_params]") {
  const MailParams twice = parse_mail_params("MAIL FROM:<a@b.example> SIZE=1 SIZE=999999999\r\n");
  CHECK(twice.status == MailParamStatus::kBadSize);
  CHECK(twice.address == "a@b.example");
  CHECK(twice.declared_size == 1u);  // the first; the status says not to trust it
  const MailParams junk = parse_mail_params("RCPT TO:<a|b@c.example>x\r\n");
  CHECK(junk.status == MailParamStatus::kJunkAfterPath);
  CHECK(junk.domain == "c.example");
  CHECK(junk.special_chars);
}

namespace {

struct Special {
  const char* what;
  std::string line;
  bool special;
  size_t index;  // in the line
};

}  // namespace

TEST_CASE("special characters in the path: | ` NUL and control bytes", "[mail_params]") {
  using namespace std::string_literals;
  const auto v = GENERATE(values<Special>({
      {"pipe", "MAIL FROM:<a|b@example.org>\r\n", true, 12},
      {"backquote", "RCPT TO:<`id`@example.org>\r\n", true, 9},
      {"NUL", "MAIL FROM:<ab\0@example.org>\r\n"s, true, 13},
      {"control byte", "MAIL FROM:<a@exa\x01mple.org>\r\n", true, 16},
      {"DEL", "MAIL FROM:<a@example.org\x7f>\r\n", true, 24},
      {"tab", "MAIL FROM:<a\tb@example.org>\r\n", true, 12},
      {"bare CR inside", "MAIL FROM:<a\r@example.org>\r\n", true, 12},
      {"first of several", "MAIL FROM:<a`b|c@example.org>\r\n", true, 12},
      {"in a quoted local part", "MAIL FROM:<\"x|y\"@example.org>\r\n", true, 13},
      {"in a source route", "RCPT TO:<@r|x.example:u@example.org>\r\n", true, 11},
      {"unbracketed", "MAIL FROM: a|b@example.org\r\n", true, 12},
      {"in an unterminated path", "MAIL FROM:<a@b|c\r\n", true, 14},
      {"in a parameter: not the address", "MAIL FROM:<a@example.org> ENVID=x|y\r\n", false, 0},
      {"the line ending is not in the address", "MAIL FROM:<a@example.org>\r\n", false, 0},
      {"UTF-8 is not special", "MAIL FROM:<\xc3\xa9@example.org>\r\n", false, 0},
  }));
  INFO(v.what);
  const MailParams r = parse_mail_params(v.line);
  CHECK(r.special_chars == v.special);
  CHECK(r.special_index == v.index);
}

TEST_CASE("every status has its own name", "[mail_params]") {
  std::set<std::string_view> names;
#define SG_X(name, text)                             \
  CHECK(to_string(MailParamStatus::name) == (text)); \
  names.insert(text);
  SG_MAIL_PARAM_STATUSES(SG_X)
#undef SG_X
  CHECK(names.size() == 10);
}

namespace {

struct Glob {
  const char* pattern;
  const char* text;
  bool match;
};

}  // namespace

TEST_CASE("match_pattern: case-insensitive glob with * and ?", "[mail_params]") {
  const auto v = GENERATE(values<Glob>({
      {"", "", true},
      {"", "a", false},
      {"*", "", true},
      {"*", "anything", true},
      {"**", "x", true},
      {"?", "", false},
      {"?", "a", true},
      {"?", "ab", false},
      {"*.exe", "evil.exe", true},
      {"*.exe", "EVIL.EXE", true},
      {"*.EXE", "evil.exe", true},
      {"*.exe", "evil.exe.txt", false},
      {"*.exe", "evil.exe.exe", true},
      {"*.exe", ".exe", true},
      {"*.exe", "exe", false},
      {"*@example.org", "alice@example.org", true},
      {"*@example.org", "alice@example.org.evil", false},
      {"*@*.example.org", "a@mx.example.org", true},
      {"*@*.example.org", "a@example.org", false},
      {"a?c", "abc", true},
      {"a?c", "ac", false},
      {"a*b*c", "aXbYc", true},
      {"a*b*c", "abcbc", true},
      {"a*b*c", "acb", false},
      {"*a*b", "aaab", true},
      {"*ab*ab*", "xabyabz", true},
      {"*ab*ab*", "xabyaz", false},
      {"?*", "", false},
      {"*?", "a", true},
      {"exact", "exact", true},
      {"exact", "exac", false},
  }));
  INFO(v.pattern << " ~ " << v.text);
  CHECK(match_pattern(v.pattern, v.text) == v.match);
}

TEST_CASE("match_pattern: many stars on a long text stay polynomial", "[mail_params]") {
  // A recursive matcher takes exponential time here; the iterative one O(pattern x text).
  std::string pattern;
  for (int i = 0; i < 40; ++i) pattern += "*a";
  pattern += "*b";
  const std::string text(100000, 'a');
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(match_pattern(pattern, text));
  CHECK(match_pattern(pattern, text + "b"));
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  CHECK(ms < 5000);  // generous: well under a second even in a debug build
}
