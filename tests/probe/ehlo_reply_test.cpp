#include "probe/ehlo_reply.hpp"

#include <catch2/catch.hpp>

#include "probe/reply_parser.hpp"

using namespace sg::probe;

namespace {
Reply reply(const std::string& text) {
  ReplyParser p;
  p.feed(text);
  REQUIRE(p.has_reply());
  return p.take();
}
}  // namespace

TEST_CASE("masked keywords: X's, optionally ending in A") {
  struct Vector {
    const char* token;
    bool masked;
  };
  const auto v = GENERATE(values<Vector>({
      {"XXXXXXXA", true},  // STARTTLS as Cisco ASA shows it
      {"XXXXXXXX", true},
      {"XXXA", true},
      {"XXX", true},
      {"XA", false},  // too short to tell
      {"XEXCH50", false},
      {"X-LINK2STATE", false},
      {"XXAXXXXA", false},
      {"AXXXXXXX", false},
  }));
  INFO(v.token);
  CHECK(is_masked_keyword(v.token) == v.masked);
}

TEST_CASE("a greeting names the server; a NOOP's answer does not") {
  CHECK(looks_like_greeting("mx.example.org"));
  CHECK(looks_like_greeting("mx.example.org Hello client [198.18.1.1]"));
  CHECK(looks_like_greeting("localhost"));
  CHECK(looks_like_greeting("[198.18.2.1]"));
  CHECK_FALSE(looks_like_greeting("2.0.0 Ok"));
  CHECK_FALSE(looks_like_greeting("OK"));
  CHECK_FALSE(looks_like_greeting("ok."));
  CHECK_FALSE(looks_like_greeting(""));
}

TEST_CASE("the Cisco ESA note's EHLO reply: 8BITMIME, SIZE and a masked STARTTLS") {
  const EhloOffer o =
      parse_ehlo(reply("250-esa.example.com\r\n250-8BITMIME\r\n"
                       "250-SIZE 14680064\r\n250 XXXXXXXA\r\n"));
  CHECK(o.positive);
  CHECK(o.greets);
  CHECK(o.greeting == "esa.example.com");
  CHECK(o.offers("8BITMIME"));
  CHECK(o.offers("size"));
  CHECK(o.find("SIZE")->params == "14680064");
  CHECK_FALSE(o.offers("STARTTLS"));
  REQUIRE(o.masked().size() == 1);
  CHECK(o.masked().front()->raw == "250 XXXXXXXA");
}

TEST_CASE("refused and NOOP-like EHLO replies") {
  const EhloOffer refused = parse_ehlo(reply("500 5.5.2 Error: command not recognized\r\n"));
  CHECK_FALSE(refused.positive);
  CHECK_FALSE(refused.greets);
  CHECK(refused.lines.empty());
  const EhloOffer noop = parse_ehlo(reply("250 2.0.0 Ok\r\n"));
  CHECK(noop.positive);
  CHECK_FALSE(noop.greets);
}

TEST_CASE("the AUTH mechanism --auth-check names") {
  CHECK(auth_mechanism(parse_ehlo(reply("250-mx\r\n250 AUTH CRAM-MD5 LOGIN PLAIN\r\n"))) ==
        "LOGIN");
  CHECK(auth_mechanism(parse_ehlo(reply("250-mx\r\n250 AUTH GSSAPI NTLM\r\n"))) == "GSSAPI");
  CHECK(auth_mechanism(parse_ehlo(reply("250-mx\r\n250 SIZE\r\n"))) == "PLAIN");
}
