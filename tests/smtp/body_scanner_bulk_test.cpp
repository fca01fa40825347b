// BodyScanner's bulk paths (runs found a word at a time, a body line's CRLF taken whole) against
// the scanner as it was before them (support/body_scanner_reference.hpp), which went through
// every CR, LF and NUL byte by byte: the same events, sizes and line lengths for stray bytes at
// every position inside 8- and 16-byte words, dot lines of every kind at every split point,
// line limits around every length, MIME boundaries, and random messages in random chunkings.
// Then what the reading switches (BodyLimits::headers, ::mime) leave out.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "smtp/body_scanner.hpp"
#include "smtp/body_scanner_fixture.hpp"
#include "support/body_scanner_reference.hpp"

using namespace sg::smtp;
using namespace sg::smtp::body_test;
using namespace std::string_literals;

namespace {

// scan() with the reference scanner.
Scan scan_reference(std::string_view msg, const std::vector<size_t>& cuts, BodyLimits limits) {
  reference::BodyScanner s(limits);
  Scan r;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(msg.size());
  for (const size_t to : ends) {
    const size_t n = s.feed(bytes_of(msg.substr(from, to - from)), r.events);
    r.consumed += n;
    if (n < to - from) break;
    from = to;
  }
  s.finish(r.events);
  r.size = s.size();
  r.to_fields = s.to_fields();
  r.longest_header = s.longest_header_line();
  r.longest_body = s.longest_body_line();
  return r;
}

void same_as_reference(std::string_view msg, const std::vector<size_t>& cuts, BodyLimits limits) {
  const Scan now = scan(msg, cuts, limits);
  const Scan ref = scan_reference(msg, cuts, limits);
  std::string shown;
  for (const char ch : msg) {
    if (ch == '\r' || ch == '\n' || ch == 0)
      shown += ch == '\r' ? "\\r" : ch == '\n' ? "\\n" : "\\0";
    else
      shown += ch;
  }
  INFO("message: " << shown);
  INFO("cuts: " << cuts.size());
  REQUIRE(show(now.events) == show(ref.events));
  REQUIRE(now.consumed == ref.consumed);
  REQUIRE(now.size == ref.size);
  REQUIRE(now.to_fields == ref.to_fields);
  REQUIRE(now.longest_header == ref.longest_header);
  REQUIRE(now.longest_body == ref.longest_body);
}

// Whole, cut at every point, and cut after every byte.
void same_at_every_split(std::string_view msg, BodyLimits limits) {
  same_as_reference(msg, {}, limits);
  for (size_t k = 1; k < msg.size(); ++k) same_as_reference(msg, {k}, limits);
  std::vector<size_t> all;
  for (size_t k = 1; k < msg.size(); ++k) all.push_back(k);
  same_as_reference(msg, all, limits);
}

constexpr BodyLimits kData{.max_header_line = 0, .max_body_line = 0};
constexpr BodyLimits kTight{.max_header_line = 20, .max_body_line = 24};

const std::string kHead = "Subject: x\r\nTo: a@b\r\n\r\n";

}  // namespace

TEST_CASE("a stray byte at every position of a long body line", "[body_scanner][bulk]") {
  // 40 bytes of text: the stray byte lands in every slot of the 8- and 16-byte words, and on
  // either side of the line-length limit.
  const std::string stray =
      GENERATE("\r"s, "\n"s, "\0"s, "\r\r"s, "\n\n"s, "\r\0"s, "\0\n"s, "\r\n"s, "."s, ".\r"s);
  const BodyLimits limits = GENERATE(kData, kTight, kBdat);
  for (size_t at = 0; at <= 40; ++at) {
    std::string line(40, 'x');
    line.insert(at, stray);
    same_at_every_split(kHead + line + "\r\nmore text here\r\n.\r\n", limits);
  }
}

TEST_CASE("a body of long lines cut at every point", "[body_scanner][bulk]") {
  std::string msg = kHead;
  for (size_t len : {1, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33, 64})
    msg += std::string(len, static_cast<char>('a' + len % 26)) + "\r\n";
  msg += ".\r\n";
  same_at_every_split(msg, kData);
  same_at_every_split(msg, kTight);
  same_at_every_split(msg, kBdat);
}

TEST_CASE("dot lines and the end of data at every split point", "[body_scanner][bulk]") {
  const std::string seq =
      GENERATE("\r\n.\r\n"s, "\n.\r\n"s, "\r.\r\n"s, "\r\n.\n"s, "\n.\n"s, "\r\n.\r"s, "\r.\r"s,
               "\r\n\0.\r\n"s, "\r\n.\0\r\n"s, "\r\n.\r\0\n"s, "\r\0\n.\r\n"s, "\r\n..\r\n"s,
               "\r\n. \r\n"s, "\r\n.x\r\n"s, "\r\r\n.\r\r\n"s, "x.\r\n"s, ".\r\n"s);
  const BodyLimits limits = GENERATE(kData, kTight, kBdat);
  // After a long line (the bulk path runs up to the sequence), then text or nothing after it.
  same_at_every_split(kHead + std::string(37, 'y') + seq + "tail\r\n.\r\n", limits);
  same_at_every_split(kHead + std::string(16, 'y') + seq, limits);
  // As the message's first bytes.
  same_at_every_split(seq + "z\r\n.\r\n", limits);
}

TEST_CASE("line lengths around the limit", "[body_scanner][bulk]") {
  const BodyLimits limits{.max_header_line = 16, .max_body_line = 16};
  for (size_t len = 12; len <= 20; ++len) {
    const std::string line(len, 'w');
    same_at_every_split("Subject: " + line + "\r\n\r\n" + line + "\r\n" + line + "\n.\r\n", limits);
  }
}

TEST_CASE("MIME boundaries between bulk lines", "[body_scanner][bulk]") {
  same_at_every_split(kMultipart, kData);
  same_at_every_split(kMultipart, kTight);
  // Lines that start like a boundary and are not one, and lines of "-" only.
  const std::string msg =
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n--\r\n-\r\n--x\r\n---b\r\n"
      "-x--b\r\n--b-\r\n--bb\r\n--b--\r\nafter\r\n.\r\n";
  same_at_every_split(msg, kData);
  // Stray bytes before, inside and after boundary lines and lines that look like one.
  const std::string stray =
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\na\0\r\n--b\r\n\r\n\0--b\r\n"
      "x-\r\n-\0-b\r\n--\0b\r\ntext\n--b\r\n\r\nline\r--b\r\n--b\r--b--\r\nend\r\n.\r\n"s;
  same_at_every_split(stray, kData);
  same_at_every_split(stray, kTight);
}

TEST_CASE("random messages in random chunkings", "[body_scanner][bulk]") {
  // Mostly text, with line breaks, dots, dashes, colons, white space and stray bytes often
  // enough that every state meets every byte.
  const std::string alphabet = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..--:  \t\r\r\r\n\n\n\n\0"s;
  uint32_t x = 20261208;
  const auto next = [&x](uint32_t n) {
    x = x * 1103515245u + 12345u;
    return (x >> 8) % n;
  };
  const std::vector<BodyLimits> all_limits{
      kData, kTight, kBdat, {.max_header_line = 5, .max_body_line = 9}};
  for (int round = 0; round < 3000; ++round) {
    std::string msg = round % 3 == 0 ? kHead : round % 3 == 1 ? kMultipart.substr(0, 200) : "";
    const size_t len = next(400);
    for (size_t k = 0; k < len; ++k) {
      // Runs of text, so that words fill up between the line bytes.
      if (next(4) == 0)
        msg += alphabet[next(static_cast<uint32_t>(alphabet.size()))];
      else
        msg += static_cast<char>('a' + next(26));
    }
    std::vector<size_t> cuts;
    for (size_t at = next(40); at < msg.size(); at += 1 + next(60)) cuts.push_back(at);
    BodyLimits limits = all_limits[round % all_limits.size()];
    same_as_reference(msg, cuts, limits);
    if (round % 3 != 1) {  // no Content-Type: without MIME, the same
      limits.mime = false;
      same_as_reference(msg, cuts, limits);
    }
  }
}

TEST_CASE("without headers: as after an empty header section, in random chunkings",
          "[body_scanner][bulk]") {
  // The reference reads "\r\n" + msg as an empty header section then msg as body: the same
  // events but kHeaderEnd, 2 bytes later.
  const std::string alphabet = "aaaaaaaaaaaaaaaaaaaa..--:  \t\r\r\r\n\n\n\n\0"s;
  uint32_t x = 8122026;
  const auto next = [&x](uint32_t n) {
    x = x * 1103515245u + 12345u;
    return (x >> 8) % n;
  };
  for (int round = 0; round < 3000; ++round) {
    std::string msg = "z";  // neither a line byte nor a dot: no dot line at the start
    const size_t len = next(300);
    for (size_t k = 0; k < len; ++k)
      msg += next(3) == 0 ? alphabet[next(static_cast<uint32_t>(alphabet.size()))]
                          : static_cast<char>('a' + next(26));
    std::vector<size_t> cuts;
    for (size_t at = 1 + next(30); at < msg.size(); at += 1 + next(40)) cuts.push_back(at);
    BodyLimits limits{.max_header_line = 4, .max_body_line = 5 + next(20)};
    limits.dot_terminated = round % 2 == 0;
    const Scan ref = scan_reference("\r\n" + msg, {}, limits);
    limits.headers = false;
    const Scan now = scan(msg, cuts, limits);
    std::vector<BodyEvent> want;
    for (BodyEvent e : ref.events) {
      using K = BodyEventKind;
      if (e.kind == K::kHeaderEnd) continue;
      if (e.kind == K::kMimePartEnd) e.value -= 2;
      if (e.kind != K::kMimePart && e.kind != K::kMimePartEnd) e.offset -= 2;
      if (e.kind == K::kDotLine || e.kind == K::kBodyEnd) e.value -= 2;
      want.push_back(e);
    }
    REQUIRE(show(now.events) == show(want));
    REQUIRE(now.consumed + 2 == ref.consumed);
    REQUIRE(now.longest_body == ref.longest_body);
    REQUIRE(now.longest_header == 0);
  }
}

TEST_CASE("without MIME: the message is one part, stray bytes as before", "[body_scanner][bulk]") {
  BodyLimits limits;
  limits.mime = false;
  limits.max_body_line = 200;
  const Scan s = scan(kMultipart, {}, limits);
  const Scan full = scan(kMultipart, {}, BodyLimits{.max_body_line = 200});
  CHECK(only(s.events,
             {BodyEventKind::kMimePart, BodyEventKind::kMimePartEnd, BodyEventKind::kMimeMultipart,
              BodyEventKind::kMimeFilename, BodyEventKind::kMimeEncoding}) ==
        std::vector<std::string>{"mime_part@0=0", "mime_part_end@0=" + at(kMultipart, ".\r\n")});
  // The header section, the To: field and the end of data are read as before.
  CHECK(only(s.events,
             {BodyEventKind::kHeaderEnd, BodyEventKind::kToField, BodyEventKind::kBodyEnd}) ==
        only(full.events,
             {BodyEventKind::kHeaderEnd, BodyEventKind::kToField, BodyEventKind::kBodyEnd}));
  CHECK(s.to_fields == 1);
  CHECK(s.consumed == kMultipart.size());
}

TEST_CASE("without headers: every line is a body line", "[body_scanner][bulk]") {
  BodyLimits limits;
  limits.headers = false;
  limits.max_header_line = 10;
  limits.max_body_line = 30;
  const std::string msg =
      "To: a@b\r\nSubject: a subject longer than thirty bytes\r\n\r\nbo\ndy\r\n.\r\n";
  const Scan s = scan(msg, {}, limits);
  CHECK(show(s.events) == std::vector<std::string>{
                              "mime_part@0=0",
                              "body_line_long@9=31",
                              "bare_lf@" + at(msg, "\ndy") + "=0",
                              "body_end@" + at(msg, ".\r\n") + "=" + std::to_string(msg.size()),
                              "mime_part_end@0=" + at(msg, ".\r\n"),
                          });
  CHECK(s.to_fields == 0);
  CHECK(s.longest_header == 0);
  CHECK(s.longest_body == 45);
  // Stray bytes and the end of data do not depend on it.
  for (size_t k = 1; k < msg.size(); ++k)
    CHECK(show(scan(msg, {k}, limits).events) == show(s.events));
}
