// fuzz_body: the message scanner and the MAIL/RCPT parameter parser.
//
// Input: byte 0 chooses the mode (byte % 4), byte 1 the limits, byte 2 the largest piece (1-256),
// bytes 3-6 the seed of the piece sizes; the rest is the text.
//   0 DATA body  smtp::BodyScanner (dot-terminated) fed whole, one byte at a time and in
//                fuzzer-chosen pieces: the events, the bytes consumed and every figure must be
//                identical. The end of data must also be where smtp::Session sees it.
//   1 BDAT       the same without dot termination (the message ends with finish()).
//   2 MAIL/RCPT  smtp::parse_mail_params on the text: every view lies inside the line, a
//                special character is where it is said to be, and the line ending is optional
//                (the text with CRLF or LF appended parses the same).
//   3 pattern    smtp::match_pattern(pattern, text), the text cut at its first NUL, against a
//                plain dynamic-programming glob matcher.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_support.hpp"
#include "smtp/body_scanner.hpp"
#include "smtp/mail_params.hpp"
#include "smtp/session.hpp"

using namespace sg;
using smtp::BodyEvent;
using smtp::BodyScanner;

namespace {

struct Scan {
  std::vector<BodyEvent> events;
  size_t consumed = 0;
  uint64_t size = 0;
  bool ended = false;
  uint32_t to_fields = 0;
  uint64_t longest_header = 0, longest_body = 0;
  bool operator==(const Scan&) const = default;
};

template <typename Cut>
Scan scan(std::span<const uint8_t> msg, const smtp::BodyLimits& limits, Cut cut) {
  BodyScanner s(limits);
  Scan r;
  for (size_t from = 0; from < msg.size();) {
    const size_t n = std::min(cut(), msg.size() - from);
    const size_t used = s.feed(msg.subspan(from, n), r.events);
    SG_FUZZ_CHECK(used <= n, "consumed more than offered");
    r.consumed += used;
    if (used < n) {
      SG_FUZZ_CHECK(s.ended(), "a piece not consumed whole before the end of data");
      break;
    }
    from += n;
  }
  r.ended = s.ended();
  if (r.ended) {
    const size_t events = r.events.size();
    SG_FUZZ_CHECK(s.feed(fuzz::bytes_of("x"), r.events) == 0 && r.events.size() == events,
                  "a feed after the end of data consumed bytes");
  }
  s.finish(r.events);
  SG_FUZZ_CHECK(s.feed(fuzz::bytes_of("x"), r.events) == 0, "a feed after finish consumed bytes");
  r.size = s.size();
  r.to_fields = s.to_fields();
  r.longest_header = s.longest_header_line();
  r.longest_body = s.longest_body_line();
  SG_FUZZ_CHECK(s.mime_depth() <= BodyScanner::kMaxMimeDepth, "MIME depth over the cap");
  return r;
}

std::string show(const Scan& s) {
  std::string out = "consumed " + std::to_string(s.consumed) + " size " + std::to_string(s.size) +
                    " ended " + std::to_string(s.ended) + " to " + std::to_string(s.to_fields) +
                    " longest " + std::to_string(s.longest_header) + "/" +
                    std::to_string(s.longest_body) + "\n";
  for (const BodyEvent& e : s.events)
    out += std::string(smtp::to_string(e.kind)) + "@" + std::to_string(e.offset) + "=" +
           std::to_string(e.value) + " " + fuzz::escaped(e.text, 80) + "\n";
  return out;
}

// The end of data as smtp::Session sees it after DATA and a 354: the stream offset of the body's
// end relative to its first byte, or none.
struct EndSink : smtp::SessionSink {
  uint64_t end = UINT64_MAX;
  smtp::CommandFate on_command(const smtp::CommandLine&) override {
    return smtp::CommandFate::kForwarded;
  }
  void on_reply(const smtp::ReplyLine&) override {}
  void on_body_end(uint64_t pos) override {
    if (end == UINT64_MAX) end = pos;
  }
};

uint64_t session_body_end(std::span<const uint8_t> body) {
  smtp::Session s;
  EndSink sink;
  const std::string_view greeting = "220 mx\r\n", data = "DATA\r\n", go = "354 go\r\n";
  s.feed(smtp::Dir::kServerToClient, 0, fuzz::bytes_of(greeting), sink);
  s.feed(smtp::Dir::kClientToServer, 0, fuzz::bytes_of(data), sink);
  s.feed(smtp::Dir::kServerToClient, greeting.size(), fuzz::bytes_of(go), sink);
  s.feed(smtp::Dir::kClientToServer, data.size(), body, sink);
  return sink.end == UINT64_MAX ? UINT64_MAX : sink.end - data.size();
}

void body(std::span<const uint8_t> msg, uint8_t limits_byte, size_t max_piece, uint32_t seed,
          bool dot) {
  static constexpr uint64_t kLines[] = {0, 1, 2, 20, 78, 998};
  smtp::BodyLimits limits;
  limits.max_header_line = kLines[limits_byte % 6];
  limits.max_body_line = kLines[(limits_byte / 6) % 6];
  limits.max_mime_depth = (limits_byte >> 6) == 3 ? 40 : (limits_byte >> 6) * 3;
  limits.dot_terminated = dot;

  const Scan whole = scan(msg, limits, [&] { return msg.size(); });
  const Scan bytewise = scan(msg, limits, [] { return size_t{1}; });
  fuzz::SplitRng rng(seed);
  const Scan pieces = scan(msg, limits, [&] { return rng.piece(max_piece); });
  SG_FUZZ_CHECK(bytewise == whole,
                "byte by byte\nwhole:\n" + show(whole) + "split:\n" + show(bytewise));
  SG_FUZZ_CHECK(pieces == whole, "pieces\nwhole:\n" + show(whole) + "split:\n" + show(pieces));

  for (const BodyEvent& e : whole.events)
    SG_FUZZ_CHECK(e.offset <= whole.size, "event beyond the message: " + show(whole));
  if (dot) {
    // The scanner and the session agree on where a DATA body ends.
    const uint64_t end = session_body_end(msg);
    SG_FUZZ_CHECK(whole.ended == (end != UINT64_MAX) && (!whole.ended || end == whole.consumed),
                  "scanner end " + std::to_string(whole.ended) + "@" +
                      std::to_string(whole.consumed) + ", session end " + std::to_string(end));
  } else {
    SG_FUZZ_CHECK(whole.consumed == msg.size(), "BDAT bytes not consumed");
  }
}

bool inside(std::string_view part, std::string_view line) {
  return part.empty() ||
         (part.data() >= line.data() && part.data() + part.size() <= line.data() + line.size());
}

// Offset of a view into `line`, or SIZE_MAX for an empty view (where it points does not matter).
size_t offset(std::string_view part, std::string_view line) {
  return part.empty() ? SIZE_MAX : static_cast<size_t>(part.data() - line.data());
}

std::string fields(const smtp::MailParams& r, std::string_view line) {
  std::string s =
      std::string(smtp::to_string(r.status)) + " " + std::string(smtp::to_string(r.verb));
  for (std::string_view part :
       {r.address, r.local_part, r.domain, r.source_route, r.parameters, r.body})
    s += " [" + std::to_string(offset(part, line)) + "+" + std::to_string(part.size()) + "]";
  s += r.declared_size ? " size=" + std::to_string(*r.declared_size) : " nosize";
  s += std::string(r.smtputf8 ? " utf8" : "") + (r.brackets ? " <>" : "") +
       (r.null_path ? " null" : "");
  if (r.special_chars) s += " special@" + std::to_string(r.special_index);
  return s;
}

void mail_params(std::string_view line) {
  const smtp::MailParams r = smtp::parse_mail_params(line);
  for (std::string_view part :
       {r.address, r.local_part, r.domain, r.source_route, r.parameters, r.body})
    SG_FUZZ_CHECK(inside(part, line), "a view outside the line: " + fields(r, line));
  if (r.status == smtp::MailParamStatus::kOk)
    SG_FUZZ_CHECK(r.verb == smtp::Verb::kMail || r.verb == smtp::Verb::kRcpt, fields(r, line));
  if (r.special_chars) {
    SG_FUZZ_CHECK(r.special_index < line.size(), fields(r, line));
    const auto c = static_cast<unsigned char>(line[r.special_index]);
    SG_FUZZ_CHECK(c == '|' || c == '`' || c < 0x20 || c == 0x7f,
                  "special character that is not one: " + fields(r, line));
  }
  if (!r.null_path && r.status == smtp::MailParamStatus::kOk)
    SG_FUZZ_CHECK(
        r.local_part.size() + (r.domain.empty() ? 0 : r.domain.size() + 1) <= r.address.size(),
        fields(r, line));
  if (line.empty() || line.back() == '\r' || line.back() == '\n') return;
  // The line ending is optional: with one appended the line parses the same.
  for (std::string_view ending : {"\r\n", "\n"}) {
    const std::string with = std::string(line) + std::string(ending);
    const smtp::MailParams e = smtp::parse_mail_params(with);
    SG_FUZZ_CHECK(fields(e, with) == fields(r, line),
                  "with " + fuzz::escaped(ending) + ": " + fields(e, with) +
                      "\nwithout: " + fields(r, line) + "\nline: " + fuzz::escaped(line));
  }
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// The reference: match[i][j] = pattern[i:] matches text[j:].
bool reference_match(std::string_view pattern, std::string_view text) {
  const size_t m = pattern.size(), n = text.size();
  std::vector<char> next(n + 1, 0), cur(n + 1, 0);
  next[n] = 1;  // empty pattern matches only the empty text
  for (size_t i = m; i-- > 0;) {
    for (size_t j = n + 1; j-- > 0;) {
      const char p = pattern[i];
      if (p == '*') {
        cur[j] = next[j] || (j < n && cur[j + 1]);
      } else {
        cur[j] = j < n && (p == '?' || lower(p) == lower(text[j])) && next[j + 1];
      }
    }
    std::swap(next, cur);
  }
  return next[0];
}

void pattern(std::string_view input) {
  const size_t nul = input.find('\0');
  if (nul == input.npos) return;
  const std::string_view p = input.substr(0, std::min<size_t>(nul, 512));
  const std::string_view t = input.substr(nul + 1, 2048);
  const bool got = smtp::match_pattern(p, t);
  SG_FUZZ_CHECK(got == reference_match(p, t), "match_pattern(" + fuzz::escaped(p) + ", " +
                                                  fuzz::escaped(t) + ") = " + std::to_string(got));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Input in(data, size);
  const uint8_t mode = in.u8() % 4;
  const uint8_t limits = in.u8();
  const size_t max_piece = static_cast<size_t>(in.u8()) + 1;
  const uint32_t seed = in.u32();
  const std::span<const uint8_t> rest = in.rest();
  switch (mode) {
    case 0:
    case 1:
      body(rest, limits, max_piece, seed, mode == 0);
      break;
    case 2:
      mail_params(fuzz::text_of(rest));
      break;
    default:
      pattern(fuzz::text_of(rest));
      break;
  }
  return 0;
}
