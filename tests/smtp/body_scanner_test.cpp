// BodyScanner: readable messages for the header section, line lengths and MIME structure
// (parts, nesting, file names, encodings). Byte-level smuggling material and the split-point
// properties are in body_scanner_stream_test.cpp.
#include "smtp/body_scanner.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "smtp/body_scanner_fixture.hpp"

using namespace sg::smtp;
using namespace sg::smtp::body_test;

TEST_CASE("header section: its end, To fields, line lengths", "[body_scanner]") {
  const std::string msg =
      "From: a@example.org\r\n"
      "To: b@example.org,\r\n"
      " c@example.org\r\n"
      "to : d@example.org\r\n"
      "Reply-To: e@example.org\r\n"
      "X-To: f@example.org\r\n"
      "Subject: a folded\r\n"
      "\tsubject\r\n"
      "\r\n"
      "To: not a header\r\n"
      ".\r\n";
  const Scan r = scan(msg);
  const std::string body = std::to_string(msg.find("\r\n\r\n") + 4);
  CHECK(show(r.events) ==
        std::vector<std::string>{
            "mime_part@0=0",
            "to_field@" + at(msg, "To: b") + "=1",
            "to_field@" + at(msg, "to : d") + "=2",
            "header_end@" + body + "=0",
            "body_end@" + std::to_string(msg.size() - 3) + "=" + std::to_string(msg.size()),
            "mime_part_end@0=" + at(msg, ".\r\n"),
        });
  CHECK(r.to_fields == 2);
  CHECK(r.consumed == msg.size());
  CHECK(r.size == msg.size());
  CHECK(r.longest_header == std::string("Reply-To: e@example.org\r\n").size());
  CHECK(r.longest_body == std::string("To: not a header\r\n").size());
}

TEST_CASE("a line that is no header field ends the header section", "[body_scanner]") {
  const std::string msg = "Subject: x\r\nthis is the body\r\nTo: y\r\n";
  const Scan r = scan(msg, {}, kBdat);
  CHECK(only(r.events, {BodyEventKind::kHeaderEnd, BodyEventKind::kToField}) ==
        std::vector<std::string>{"header_end@12=1"});
  CHECK(r.longest_header == 18);  // "this is the body\r\n" was read in the header section
}

TEST_CASE("line limits: one event per line, on its first byte past the limit", "[body_scanner]") {
  const std::string msg =
      "Subject: 0123456789\r\n"  // 21 bytes: over 20
      "X: 01234567890123\r\n"    // 19 bytes: within
      "\r\n"
      "0123456789\r\n"  // 12 bytes: over 11
      "short\r\n"
      "0123456789012345678901234567890\r\n"
      ".\r\n";
  const BodyLimits limits{.max_header_line = 20, .max_body_line = 11, .max_mime_depth = 8};
  const Scan r = scan(msg, {}, limits);
  CHECK(only(r.events, {BodyEventKind::kHeaderLineLong, BodyEventKind::kBodyLineLong}) ==
        std::vector<std::string>{
            "header_line_long@0=21",
            "body_line_long@" + std::to_string(msg.find("\r\n\r\n") + 4) + "=12",
            "body_line_long@" + at(msg, "0123456789012345678901") + "=12",
        });
  const Scan off = scan(msg);  // 0: not checked
  CHECK(only(off.events, {BodyEventKind::kHeaderLineLong, BodyEventKind::kBodyLineLong}).empty());
}

TEST_CASE("a header field longer than the parse buffer is measured and reported",
          "[body_scanner]") {
  std::string msg = "Subject: ";
  for (int i = 0; i < 100; ++i) msg += std::string(60, 'x') + "\r\n ";
  msg += "end\r\nContent-Disposition: attachment; filename=\"" + std::string(5000, 'y') +
         ".exe\"\r\nTo: a@example.org\r\n\r\nbody\r\n";
  const Scan r = scan(msg, {}, kBdat);
  const size_t cd = msg.find("Content-Disposition");
  const size_t to = msg.find("To: a@");
  const auto e = only(r.events, {BodyEventKind::kHeaderFieldCut, BodyEventKind::kToField,
                                 BodyEventKind::kMimeFilename});
  REQUIRE(e.size() == 4);
  CHECK(e[0] == "header_field_cut@0=" + std::to_string(cd));
  CHECK(e[1] == "header_field_cut@" + std::to_string(cd) + "=" + std::to_string(to - cd));
  // The name is cut at the buffer's end: reported as far as it was kept (the .exe is lost, which
  // is why the cut is an event of its own).
  CHECK(e[2].rfind("mime_filename@" + std::to_string(cd) + "=", 0) == 0);
  CHECK(e[2].find(".exe") == std::string::npos);
  CHECK(e[3] == "to_field@" + std::to_string(to) + "=1");
}

TEST_CASE("MIME: parts, nesting, file names and encodings", "[body_scanner]") {
  const std::string& m = kMultipart;
  const Scan r = scan(m);
  const auto pos = [&](std::string_view needle, size_t from = 0) {
    const size_t p = m.find(needle, from);
    REQUIRE(p != std::string::npos);
    return p;
  };
  const auto after = [&](std::string_view needle, size_t from = 0) {
    return std::to_string(pos(needle, from) + needle.size());
  };
  const auto s = [](size_t n) { return std::to_string(n); };
  const size_t outer1 = pos("--outer\r\n");
  const size_t alt = outer1 + 9;
  const size_t inner1 = pos("--inner\r\n");
  const size_t inner2 = pos("--inner\r\n", inner1 + 1);
  const size_t inner_close = pos("--inner--");
  const size_t outer2 = pos("--outer\r\n", outer1 + 1);
  const size_t outer3 = pos("--outer\r\n", outer2 + 1);
  const size_t outer4 = pos("--outer\r\n", outer3 + 1);
  const size_t outer_close = pos("--outer--");
  const size_t fwd = outer4 + 9 + std::string("Content-Type: message/rfc822\r\n\r\n").size();
  const size_t end = pos("\r\n.\r\n") + 2;
  CHECK(show(r.events) ==
        std::vector<std::string>{
            "mime_part@0=0",
            "to_field@" + at(m, "To: b") + "=1",
            "header_end@" + after("\r\n\r\n") + "=0",
            "mime_multipart@0=1 outer",
            "mime_part@" + s(alt) + "=1",
            "mime_multipart@" + s(alt) + "=2 inner",
            "mime_part@" + s(inner1 + 9) + "=2",
            "mime_part_end@" + s(inner1 + 9) + "=" + s(inner2 - inner1 - 9),
            "mime_part@" + s(inner2 + 9) + "=2",
            "mime_encoding@" + at(m, "Content-Transfer-Encoding: quoted") + "=0 quoted-printable",
            "mime_part_end@" + s(inner2 + 9) + "=" + s(inner_close - inner2 - 9),
            "mime_part_end@" + s(alt) + "=" + s(inner_close - alt),
            "mime_part@" + s(outer2 + 9) + "=1",
            "mime_filename@" + at(m, "Content-Type: application/octet") + "=10 report.exe",
            "mime_encoding@" + at(m, "Content-Transfer-Encoding: base64") + "=0 base64",
            "mime_part_end@" + s(outer2 + 9) + "=" + s(outer3 - outer2 - 9),
            "mime_part@" + s(outer3 + 9) + "=1",
            "mime_filename@" + at(m, "Content-Disposition: attachment; filename*") +
                "=10 r\xc3\xa9sum\xc3\xa9.pdf",
            "mime_part_end@" + s(outer3 + 9) + "=" + s(outer4 - outer3 - 9),
            "mime_part@" + s(outer4 + 9) + "=1",
            "mime_part@" + s(fwd) + "=2",
            "mime_filename@" + at(m, "Content-Type: application/zip") + "=9 inner.zip",
            "mime_part_end@" + s(fwd) + "=" + s(outer_close - fwd),
            "mime_part_end@" + s(outer4 + 9) + "=" + s(outer_close - outer4 - 9),
            "mime_part_end@0=" + s(outer_close),
            "body_end@" + s(end) + "=" + s(m.size()),
        });
  CHECK(r.to_fields == 1);  // the forwarded message's To: is not the message's
}

namespace {

struct NameVector {
  const char* what;
  std::string headers;             // the part's header lines, CRLF-terminated
  std::vector<std::string> names;  // "characters name"
};

// The file names reported for a part with `headers`, as "characters name".
std::vector<std::string> names_of(const std::string& headers) {
  const std::string msg = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" + headers +
                          "\r\nbody\r\n--b--\r\n";
  std::vector<std::string> out;
  for (const auto& e : scan(msg, {}, kBdat).events)
    if (e.kind == BodyEventKind::kMimeFilename)
      out.push_back(std::to_string(e.value) + " " + e.text);
  return out;
}

}  // namespace

TEST_CASE("MIME file names: quoting, RFC 2231, RFC 2047, both header fields", "[body_scanner]") {
  using V = std::vector<std::string>;
  const auto v = GENERATE(values<NameVector>({
      {"quoted", "Content-Disposition: attachment; filename=\"a b.exe\"\r\n", V{"7 a b.exe"}},
      {"token", "Content-Disposition: attachment; filename=plain.exe\r\n", V{"9 plain.exe"}},
      {"unquoted with a space (read up to ';')",
       "Content-Disposition: attachment; filename=with space.exe; size=3\r\n",
       V{"14 with space.exe"}},
      {"Content-Type name", "Content-Type: application/x-msdownload; name=\"n.exe\"\r\n",
       V{"5 n.exe"}},
      {"parameter name in capitals", "Content-Disposition: attachment; FILENAME=\"UP.EXE\"\r\n",
       V{"6 UP.EXE"}},
      {"escaped quote", "Content-Disposition: attachment; filename=\"a\\\"b.exe\"\r\n",
       V{"7 a\"b.exe"}},
      {"same name in both fields: once",
       "Content-Type: application/octet-stream; name=\"x.exe\"\r\n"
       "Content-Disposition: attachment; filename=\"x.exe\"\r\n",
       V{"5 x.exe"}},
      {"different names in the two fields: both",
       "Content-Type: text/plain; name=\"a.txt\"\r\n"
       "Content-Disposition: attachment; filename=\"a.exe\"\r\n",
       V{"5 a.txt", "5 a.exe"}},
      {"the same parameter twice: both",
       "Content-Disposition: attachment; filename=\"a.txt\"; filename=\"b.exe\"\r\n",
       V{"5 a.txt", "5 b.exe"}},
      {"folded field", "Content-Disposition: attachment;\r\n\tfilename=\"folded.exe\"\r\n",
       V{"10 folded.exe"}},
      {"RFC 2231 utf-8",
       "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n",
       V{"10 r\xc3\xa9sum\xc3\xa9.pdf"}},
      {"RFC 2231 latin-1 with a language",
       "Content-Disposition: attachment; filename*=iso-8859-1'fr'r%E9sum%E9.pdf\r\n",
       V{"10 r\xc3\xa9sum\xc3\xa9.pdf"}},
      {"RFC 2231 continuations, encoded and plain",
       "Content-Disposition: attachment; filename*0*=utf-8''ev%69l; filename*1=\".e\";\r\n"
       " filename*2*=xe\r\n",
       V{"8 evil.exe"}},
      {"RFC 2231 continuations out of order",
       "Content-Disposition: attachment; filename*1=\"l.exe\"; filename*0=\"evi\"\r\n",
       V{"8 evil.exe"}},
      {"RFC 2231 unknown charset: as sent",
       "Content-Disposition: attachment; filename*=x-unknown''%41.exe\r\n",
       V{"18 x-unknown''%41.exe"}},
      {"RFC 2231 bad escape: as sent",
       "Content-Disposition: attachment; filename*=utf-8''bad%G1.exe\r\n",
       V{"17 utf-8''bad%G1.exe"}},
      {"extended and plain forms: both",
       "Content-Disposition: attachment; filename*=utf-8''new.exe; filename=\"old.txt\"\r\n",
       V{"7 new.exe", "7 old.txt"}},
      {"RFC 2047 B", "Content-Disposition: attachment; filename=\"=?UTF-8?B?ZXZpbC5leGU=?=\"\r\n",
       V{"8 evil.exe"}},
      {"RFC 2047 Q in latin-1",
       "Content-Type: application/pdf; name=\"=?iso-8859-1?Q?r=E9sum=E9_final.pdf?=\"\r\n",
       V{"16 r\xc3\xa9sum\xc3\xa9 final.pdf"}},
      {"RFC 2047 adjacent words lose the space between them",
       "Content-Disposition: attachment; filename=\"=?utf-8?q?ev?= =?utf-8?q?il.exe?=\"\r\n",
       V{"8 evil.exe"}},
      {"RFC 2047 unknown charset: as sent",
       "Content-Disposition: attachment; filename=\"=?koi8-r?B?YQ==?=\"\r\n",
       V{"17 =?koi8-r?B?YQ==?="}},
      {"empty name: none", "Content-Disposition: attachment; filename=\"\"\r\n", V{}},
      {"parameter without value: none", "Content-Disposition: attachment; filename\r\n", V{}},
      {"no name", "Content-Disposition: inline\r\nContent-Type: text/plain\r\n", V{}},
  }));
  INFO(v.what);
  CHECK(names_of(v.headers) == v.names);
}

TEST_CASE("MIME nesting deeper than the limit is reported, not parsed", "[body_scanner]") {
  const std::string msg =
      "Content-Type: multipart/mixed; boundary=a\r\n"
      "\r\n"
      "--a\r\n"
      "Content-Type: multipart/mixed; boundary=b\r\n"
      "\r\n"
      "--b\r\n"
      "Content-Disposition: attachment; filename=hidden.exe\r\n"
      "\r\n"
      "x\r\n"
      "--b--\r\n"
      "--a--\r\n";
  BodyLimits one = kBdat;
  one.max_mime_depth = 1;
  const Scan r = scan(msg, {}, one);
  const std::string part = std::to_string(msg.find("--a\r\n") + 5);
  const std::string close = at(msg, "--a--");
  CHECK(only(r.events,
             {BodyEventKind::kMimePart, BodyEventKind::kMimeMultipart, BodyEventKind::kMimeDepth,
              BodyEventKind::kMimeFilename, BodyEventKind::kMimePartEnd}) ==
        std::vector<std::string>{"mime_part@0=0", "mime_multipart@0=1 a",
                                 "mime_part@" + part + "=1", "mime_depth_exceeded@" + part + "=1",
                                 "mime_part_end@" + part + "=" +
                                     std::to_string(msg.find("--a--") - msg.find("--a\r\n") - 5),
                                 "mime_part_end@0=" + close});
  BodyLimits none = kBdat;
  none.max_mime_depth = 0;
  CHECK(only(scan(msg, {}, none).events, {BodyEventKind::kMimeDepth}) ==
        std::vector<std::string>{"mime_depth_exceeded@0=0"});
  // With the default limit the name is found.
  CHECK(only(scan(msg, {}, kBdat).events, {BodyEventKind::kMimeFilename}) ==
        std::vector<std::string>{"mime_filename@" + at(msg, "Content-Disposition") +
                                 "=10 hidden.exe"});
}

TEST_CASE("MIME boundaries: missing, too long, prefix match, an outer one closes inner parts",
          "[body_scanner]") {
  CHECK(only(scan("Content-Type: multipart/mixed\r\n\r\n--x\r\n", {}, kBdat).events,
             {BodyEventKind::kMimeBadBoundary}) ==
        std::vector<std::string>{"mime_bad_boundary@0=0"});
  const std::string long_boundary(999, 'q');
  CHECK(
      only(scan("Content-Type: multipart/mixed; boundary=" + long_boundary + "\r\n\r\n", {}, kBdat)
               .events,
           {BodyEventKind::kMimeBadBoundary}) ==
      std::vector<std::string>{"mime_bad_boundary@0=999"});

  // RFC 2046 5.1.1: the boundary only has to start the line.
  const std::string msg =
      "Content-Type: multipart/mixed; boundary=\"out\"\r\n"
      "\r\n"
      "--outer text after the boundary\r\n"
      "Content-Type: multipart/related; boundary=\"in\"\r\n"
      "\r\n"
      "--in\r\n"
      "Content-Type: text/plain; name=a.txt\r\n"
      "\r\n"
      "never closed\r\n"
      "--out--\r\n"
      "--in\r\n"
      "Content-Type: text/plain; name=b.txt\r\n";
  const Scan r = scan(msg, {}, kBdat);
  const size_t p1 = msg.find("Content-Type: multipart/related");
  const size_t p2 = msg.find("--in\r\n") + 6;
  const size_t close = msg.find("--out--");
  const auto s = [](size_t n) { return std::to_string(n); };
  CHECK(only(r.events, {BodyEventKind::kMimePart, BodyEventKind::kMimePartEnd,
                        BodyEventKind::kMimeFilename}) ==
        std::vector<std::string>{
            "mime_part@0=0",
            "mime_part@" + s(p1) + "=1",
            "mime_part@" + s(p2) + "=2",
            "mime_filename@" + s(p2) + "=5 a.txt",
            "mime_part_end@" + s(p2) + "=" + s(close - p2),
            "mime_part_end@" + s(p1) + "=" + s(close - p1),
            "mime_part_end@0=" + s(close),
        });  // "--in" after the close is epilogue: not a part, b.txt never read
}
