// BodyScanner as a stream: every smuggling sequence byte by byte, the end of a DATA body, what
// only the end decides, and the property that matters most on a packet path - the events never
// depend on how the bytes were cut (every split point, random chunkings, random messages, and
// the end of data agreeing with the Session's).
#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "smtp/body_scanner.hpp"
#include "smtp/body_scanner_fixture.hpp"
#include "smtp/session.hpp"

using namespace sg::smtp;
using namespace sg::smtp::body_test;
using namespace std::string_literals;

namespace {

struct Smuggle {
  const char* what;
  std::string bytes;
  std::vector<std::string> events;  // bare_cr, bare_lf, nul, dot_line and body_end only
};

std::vector<std::string> smuggling(const std::string& msg, BodyLimits limits = kBdat) {
  return only(scan(msg, {}, limits).events,
              {BodyEventKind::kBareCr, BodyEventKind::kBareLf, BodyEventKind::kNul,
               BodyEventKind::kDotLine, BodyEventKind::kBodyEnd});
}

}  // namespace

TEST_CASE("smuggling material between two letters: \"a\" + sequence + \"b\"", "[body_scanner]") {
  using V = std::vector<std::string>;
  const auto v = GENERATE(values<Smuggle>({
      {"LF . LF", "\n.\n", V{"bare_lf@1=0", "bare_lf@3=0", "dot_line@2=4 \\n.\\n"}},
      {"LF . CRLF", "\n.\r\n", V{"bare_lf@1=0", "dot_line@2=5 \\n.\\r\\n"}},
      {"CR . CR", "\r.\r", V{"bare_cr@1=0", "bare_cr@3=0", "dot_line@2=4 \\r.\\r"}},
      {"CR . LF", "\r.\n", V{"bare_cr@1=0", "bare_lf@3=0", "dot_line@2=4 \\r.\\n"}},
      {"LF . CR", "\n.\r", V{"bare_lf@1=0", "bare_cr@3=0", "dot_line@2=4 \\n.\\r"}},
      {"CRLF . LF", "\r\n.\n", V{"bare_lf@4=0", "dot_line@3=5 \\r\\n.\\n"}},
      {"CRLF . CR", "\r\n.\r", V{"bare_cr@4=0", "dot_line@3=5 \\r\\n.\\r"}},
      {"CR . CRLF", "\r.\r\n", V{"bare_cr@1=0", "dot_line@2=5 \\r.\\r\\n"}},
      {"CRLF . CR CRLF", "\r\n.\r\r\n", V{"bare_cr@4=0", "dot_line@3=5 \\r\\n.\\r"}},
      {"CR CRLF . CR CRLF", "\r\r\n.\r\r\n",
       V{"bare_cr@1=0", "bare_cr@5=0", "dot_line@4=6 \\r\\n.\\r"}},
      {"NUL before the dot", "\r\n\0.\r\n"s, V{"nul@3=0", "dot_line@4=7 \\r\\n\\0.\\r\\n"}},
      {"NUL after the dot", "\r\n.\0\r\n"s, V{"nul@4=0", "dot_line@3=7 \\r\\n.\\0\\r\\n"}},
      {"NUL inside the CRLF after", "\r\n.\r\0\n"s,
       V{"bare_cr@4=0", "nul@5=0", "bare_lf@6=0", "dot_line@3=7 \\r\\n.\\r\\0\\n"}},
      {"NUL inside the CRLF before", "\r\0\n.\r\n"s,
       V{"bare_cr@1=0", "nul@2=0", "bare_lf@3=0", "dot_line@4=7 \\r\\0\\n.\\r\\n"}},
      {"canonical CRLF . CRLF (inside BDAT: reported, not an end)", "\r\n.\r\n", V{"body_end@3=6"}},
      {"dot-stuffed line", "\r\n..\r\n", V{}},
      {"dot and a space", "\r\n. \r\n", V{}},
      {"dot then text", "\r\n.x\r\n", V{}},
      {"two bare LFs", "\n\n", V{"bare_lf@1=0", "bare_lf@2=0"}},
      {"two bare CRs", "\r\r", V{"bare_cr@1=0", "bare_cr@2=0"}},
      {"a lone NUL", "\0"s, V{"nul@1=0"}},
      {"two dot lines sharing a CR", "\r.\r.\r\n",
       V{"bare_cr@1=0", "bare_cr@3=0", "dot_line@2=4 \\r.\\r", "dot_line@4=7 \\r.\\r\\n"}},
  }));
  INFO(v.what);
  CHECK(smuggling("a" + v.bytes + "b") == v.events);
}

TEST_CASE("smuggling material at the very start of the message", "[body_scanner]") {
  using V = std::vector<std::string>;
  const auto v = GENERATE(values<Smuggle>({
      {"empty message", ".\r\n", V{"body_end@0=3"}},
      {"dot LF", ".\n", V{"bare_lf@1=0", "dot_line@0=2 .\\n"}},
      {"dot CR", ".\rx", V{"bare_cr@1=0", "dot_line@0=2 .\\r"}},
      {"NUL dot CRLF", "\0.\r\n"s, V{"nul@0=0", "dot_line@1=4 \\0.\\r\\n"}},
      {"leading bare LF", "\nx", V{"bare_lf@0=0"}},
  }));
  INFO(v.what);
  CHECK(smuggling(v.bytes) == v.events);
}

TEST_CASE("a DATA body ends at CRLF.CRLF: the rest is not consumed", "[body_scanner]") {
  const std::string body = "Subject: x\r\n\r\nline\n.\nstill body\r\n.\r\n";
  const std::string next = "QUIT\r\n";
  BodyScanner s;
  std::vector<BodyEvent> events;
  CHECK(s.feed(bytes_of(body + next), events) == body.size());
  CHECK(s.ended());
  CHECK(s.finished());
  CHECK(s.size() == body.size());
  CHECK(only(events,
             {BodyEventKind::kDotLine, BodyEventKind::kBodyEnd, BodyEventKind::kMimePartEnd}) ==
        std::vector<std::string>{
            "dot_line@" + std::to_string(body.find("\n.\n") + 1) + "=" +
                std::to_string(body.find("\n.\n") + 3) + " \\n.\\n",
            "body_end@" + std::to_string(body.size() - 3) + "=" + std::to_string(body.size()),
            "mime_part_end@0=" + std::to_string(body.size() - 3)});
  const size_t n = events.size();
  CHECK(s.feed(bytes_of(next), events) == 0);
  s.finish(events);
  CHECK(events.size() == n);
}

TEST_CASE("finish reports what only the end decides", "[body_scanner]") {
  CHECK(smuggling("x\r") == std::vector<std::string>{"bare_cr@1=0"});
  CHECK(smuggling("x\r\n.\r") ==
        std::vector<std::string>{"bare_cr@4=0", "dot_line@3=5 \\r\\n.\\r"});
  // A message that is all header: its last field still counts.
  const Scan r = scan("Subject: x\r\nTo: y", {}, kBdat);
  CHECK(show(r.events) ==
        std::vector<std::string>{"mime_part@0=0", "to_field@12=1", "mime_part_end@0=17"});
  CHECK(r.longest_header == 12);
  // Nothing fed, nothing reported.
  CHECK(scan("", {}, kBdat).events.empty());
}

TEST_CASE("every event kind has its own name", "[body_scanner]") {
  std::set<std::string_view> names;
#define SG_X(name, text)                           \
  CHECK(to_string(BodyEventKind::name) == (text)); \
  names.insert(text);
  SG_BODY_EVENTS(SG_X)
#undef SG_X
  CHECK(names.size() == 17);
}

namespace {

// Messages for the stream properties: MIME, folded and long headers, long lines, every
// smuggling sequence, as a DATA body and as BDAT chunks.
struct StreamCase {
  const char* what;
  std::string msg;
  BodyLimits limits;
};

std::vector<StreamCase> stream_cases() {
  const BodyLimits data{.max_header_line = 40, .max_body_line = 60, .max_mime_depth = 8};
  BodyLimits bdat = data;
  bdat.dot_terminated = false;
  BodyLimits shallow = data;
  shallow.max_mime_depth = 1;
  std::string soup = "Subject: smuggling\r\nTo: a\r\nTo: b\r\n\r\n";
  for (const std::string& seq :
       {"\n.\n"s, "\n.\r\n"s, "\r.\r"s, "\r.\n"s, "\n.\r"s, "\r\n.\n"s, "\r\n.\r"s, "\r.\r\n"s,
        "\r\n.\r\r\n"s, "\r\r\n.\r\r\n"s, "\r\n\0.\r\n"s, "\r\n.\0\r\n"s, "\r\n.\r\0\n"s,
        "\r\0\n.\r\n"s, "\r\n..\r\n"s, "\0\0"s, "\r\r\r"s, "\n\n\n"s})
    soup += "text" + seq;
  soup += "\r\n.\r\n";
  std::string cut = "Subject: ";
  for (int i = 0; i < 80; ++i) cut += std::string(58, 'x') + "\r\n ";
  cut += "end\r\nTo: z\r\n\r\n" + std::string(100, 'b') + "\r\n.\r\n";
  return {
      {"multipart as DATA", kMultipart, data},
      {"multipart as BDAT", kMultipart.substr(0, kMultipart.size() - 3), bdat},
      {"multipart, depth 1", kMultipart, shallow},
      {"smuggling soup as DATA", soup, data},
      {"smuggling soup as BDAT", soup + "more\r", bdat},
      {"a header field over the buffer", cut, data},
      {"a message that is all header", "Subject: x\r\nTo: y\r\n\tz", bdat},
  };
}

}  // namespace

TEST_CASE("events never depend on how the bytes were cut: every split point", "[body_scanner]") {
  for (const StreamCase& c : stream_cases()) {
    INFO(c.what);
    const Scan whole = scan(c.msg, {}, c.limits);
    REQUIRE(whole.events.size() >= 3);
    std::vector<size_t> every;
    for (size_t i = 1; i < c.msg.size(); ++i) every.push_back(i);
    const Scan bytewise = scan(c.msg, every, c.limits);
    CHECK(show(bytewise.events) == show(whole.events));
    CHECK(bytewise.consumed == whole.consumed);
    for (size_t cut = 0; cut <= c.msg.size(); ++cut) {
      const Scan two = scan(c.msg, {cut}, c.limits);
      if (two.events != whole.events || two.consumed != whole.consumed) {
        INFO("cut at " << cut);
        CHECK(show(two.events) == show(whole.events));
        CHECK(two.consumed == whole.consumed);
      }
    }
  }
}

TEST_CASE("events never depend on how the bytes were cut: random chunkings", "[body_scanner]") {
  std::mt19937 rng(20240514);
  for (const StreamCase& c : stream_cases()) {
    INFO(c.what);
    const Scan whole = scan(c.msg, {}, c.limits);
    for (int round = 0; round < 100; ++round) {
      std::uniform_int_distribution<size_t> count(1, 40), pos(0, c.msg.size());
      std::vector<size_t> cuts(count(rng));
      for (auto& p : cuts) p = pos(rng);
      std::sort(cuts.begin(), cuts.end());
      const Scan r = scan(c.msg, cuts, c.limits);
      if (r.events != whole.events) {
        INFO("round " << round);
        CHECK(show(r.events) == show(whole.events));
      }
      CHECK(r.consumed == whole.consumed);
      CHECK(r.to_fields == whole.to_fields);
      CHECK(r.longest_header == whole.longest_header);
      CHECK(r.longest_body == whole.longest_body);
    }
  }
}

namespace {

// A random message: lines that matter to the scanner (MIME fields, boundaries, To:, dots, NULs,
// folded and long lines) joined by line breaks of every kind, mostly CRLF.
std::string random_message(std::mt19937& rng) {
  static const std::vector<std::string> lines = {
      "",
      "",
      "",
      "text",
      "text",
      " folded",
      "To: x",
      ".",
      "..",
      "\0"s,
      ".\0"s,
      "Content-Type: multipart/mixed; boundary=b",
      "Content-Type: multipart/mixed; boundary=c",
      "Content-Type: message/rfc822",
      "Content-Transfer-Encoding: base64",
      "Content-Disposition: attachment; filename*=utf-8''%41.exe",
      "\tname=\"n.exe\"",
      "--b",
      "--b",
      "--c",
      "--b--",
      "--c--",
      std::string(70, 'L')};
  static const std::vector<std::string> breaks = {"\r\n", "\r\n", "\r\n", "\r\n",   "\r\n",
                                                  "\r\n", "\n",   "\r",   "\r\r\n", "\0\r\n"s};
  std::uniform_int_distribution<size_t> line(0, lines.size() - 1), brk(0, breaks.size() - 1),
      count(1, 60);
  // Half of them start as a multipart, or MIME structure would be rare.
  std::string msg = rng() % 2 ? "Content-Type: multipart/mixed; boundary=b\r\n\r\n" : "";
  for (size_t i = 0, n = count(rng); i < n; ++i) msg += lines[line(rng)] + breaks[brk(rng)];
  return msg;
}

// The Session's end-of-data recogniser, as the caller will cross-check it.
struct BodyEndSink : SessionSink {
  std::vector<uint64_t> ends;
  CommandFate on_command(const CommandLine&) override { return CommandFate::kForwarded; }
  void on_reply(const ReplyLine&) override {}
  void on_body_end(uint64_t pos) override { ends.push_back(pos); }
};

}  // namespace

TEST_CASE("random messages: random chunkings agree, body_end agrees with the Session",
          "[body_scanner]") {
  std::mt19937 rng(5321);
  const BodyLimits data{.max_header_line = 30, .max_body_line = 50, .max_mime_depth = 3};
  BodyLimits bdat = data;
  bdat.dot_terminated = false;
  int ended = 0, parts = 0;  // the vectors are not vacuous
  for (int round = 0; round < 300; ++round) {
    const std::string msg = random_message(rng);
    for (const BodyLimits& limits : {data, bdat}) {
      const Scan whole = scan(msg, {}, limits);
      std::uniform_int_distribution<size_t> count(1, 20), pos(0, msg.size());
      std::vector<size_t> cuts(count(rng));
      for (auto& p : cuts) p = pos(rng);
      std::sort(cuts.begin(), cuts.end());
      const Scan r = scan(msg, cuts, limits);
      if (r.events != whole.events || r.consumed != whole.consumed) {
        INFO("round " << round << (limits.dot_terminated ? " DATA" : " BDAT"));
        CHECK(show(r.events) == show(whole.events));
        CHECK(r.consumed == whole.consumed);
      }
    }
    // DATA: the scanner's body_end is where the Session sees the end of data.
    Session session;
    BodyEndSink sink;
    session.feed(Dir::kServerToClient, 0, bytes_of("220 mx\r\n"), sink);
    session.feed(Dir::kClientToServer, 0, bytes_of("DATA\r\n"), sink);
    session.feed(Dir::kServerToClient, 8, bytes_of("354 go\r\n"), sink);
    session.feed(Dir::kClientToServer, 6, bytes_of(msg), sink);
    std::vector<std::string> from_session;
    for (const uint64_t end : sink.ends) {
      from_session.push_back("body_end@" + std::to_string(end - 6 - 3) + "=" +
                             std::to_string(end - 6));
    }
    const Scan s = scan(msg, {}, data);
    ended += sink.ends.empty() ? 0 : 1;
    parts += only(scan(msg, {}, bdat).events, {BodyEventKind::kMimePart}).size() > 1 ? 1 : 0;
    if (only(s.events, {BodyEventKind::kBodyEnd}) != from_session) {
      INFO("round " << round);
      CHECK(only(s.events, {BodyEventKind::kBodyEnd}) == from_session);
    }
  }
  CHECK(ended > 30);
  CHECK(parts > 30);
}
