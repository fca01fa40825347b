#include "probe/reply_parser.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace sg::probe;

namespace {

std::vector<Reply> parse_all(const std::vector<std::string>& pieces) {
  ReplyParser p;
  std::vector<Reply> out;
  for (const std::string& piece : pieces) {
    p.feed(piece);
    while (p.has_reply()) out.push_back(p.take());
  }
  return out;
}

std::vector<std::string> lines_of(const std::vector<Reply>& rs) {
  std::vector<std::string> out;
  for (const Reply& r : rs) {
    std::string joined = std::to_string(r.code) + ":";
    for (const std::string& l : r.lines) joined += "[" + l + "]";
    out.push_back(joined);
  }
  return out;
}

}  // namespace

TEST_CASE("replies end at the first line that is not NNN-, whatever follows the code") {
  struct Vector {
    const char* description;
    std::string bytes;
    std::vector<std::string> expected;  // code:[line][line]
  };
  const auto v = GENERATE(values<Vector>({
      {"a plain greeting", "220 mx.example.org ESMTP\r\n", {"220:[220 mx.example.org ESMTP]"}},
      {"a multi-line EHLO reply",
       "250-mx.example.org\r\n250-PIPELINING\r\n250 XXXXXXXA\r\n",
       {"250:[250-mx.example.org][250-PIPELINING][250 XXXXXXXA]"}},
      {"KB 320027's PIX banner: no separator after the code",
       "220*******************************************************0*2******0****\r\n",
       {"220:[220*******************************************************0*2******0****]"}},
      {"a line without a code ends its reply (code 0) rather than wait for ever",
       "OK\r\n250 2.0.0 Ok\r\n",
       {"0:[OK]", "250:[250 2.0.0 Ok]"}},
      {"bare LF and a lone code", "250-a\n250\n", {"250:[250-a][250]"}},
      {"two replies in one read (pipelining)",
       "250 2.1.0 Ok\r\n354 go ahead\r\n",
       {"250:[250 2.1.0 Ok]", "354:[354 go ahead]"}},
  }));
  INFO(v.description);
  CHECK(lines_of(parse_all({v.bytes})) == v.expected);

  SECTION("every split point gives the same replies") {
    for (size_t cut = 1; cut < v.bytes.size(); ++cut) {
      INFO("cut at " << cut);
      CHECK(lines_of(parse_all({v.bytes.substr(0, cut), v.bytes.substr(cut)})) == v.expected);
    }
  }
  SECTION("one byte at a time gives the same replies") {
    std::vector<std::string> bytes;
    for (char c : v.bytes) bytes.emplace_back(1, c);
    CHECK(lines_of(parse_all(bytes)) == v.expected);
  }
}

TEST_CASE("an unfinished reply stays buffered until its last line arrives") {
  ReplyParser p;
  p.feed("250-mx.example.org\r\n250-SIZE 10");
  CHECK_FALSE(p.has_reply());
  CHECK_FALSE(p.idle());
  CHECK(p.leftover() == "250-mx.example.org\n250-SIZE 10");
  p.feed("00\r\n250 CHUNKING\r");
  CHECK_FALSE(p.has_reply());
  p.feed("\n");
  REQUIRE(p.has_reply());
  const Reply r = p.take();
  CHECK(r.lines == std::vector<std::string>{"250-mx.example.org", "250-SIZE 1000", "250 CHUNKING"});
  CHECK(r.text() == "mx.example.org SIZE 1000 CHUNKING");
  CHECK(p.idle());
}

TEST_CASE("a hostile server cannot make the parser grow without bound") {
  SECTION("an endless line is cut at kMaxLineBytes and the reply marked truncated") {
    ReplyParser p;
    const std::string chunk(1000, '*');
    p.feed("220 ");
    for (int i = 0; i < 100; ++i) p.feed(chunk);  // 100 kB, no LF
    CHECK(p.leftover().size() == ReplyParser::kMaxLineBytes);
    p.feed("\r\n");
    REQUIRE(p.has_reply());
    const Reply r = p.take();
    CHECK(r.truncated);
    CHECK(r.code == 220);
    CHECK(r.lines.front().size() == ReplyParser::kMaxLineBytes);
  }
  SECTION("an endless continuation ends after kMaxReplyLines lines") {
    ReplyParser p;
    for (size_t i = 0; i < ReplyParser::kMaxReplyLines + 10; ++i) p.feed("250-X\r\n");
    REQUIRE(p.has_reply());
    const Reply r = p.take();
    CHECK(r.truncated);
    CHECK(r.lines.size() == ReplyParser::kMaxReplyLines);
  }
}

TEST_CASE("reply codes and continuation") {
  CHECK(reply_code("220 x") == 220);
  CHECK(reply_code("2002*******2***0*00") == 200);
  CHECK(reply_code("OK") == 0);
  CHECK(reply_code("22") == 0);
  CHECK(is_continuation("250-PIPELINING"));
  CHECK_FALSE(is_continuation("250 PIPELINING"));
  CHECK_FALSE(is_continuation("220****"));
  CHECK_FALSE(is_continuation("abc-def"));
}
