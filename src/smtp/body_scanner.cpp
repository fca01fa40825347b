#include "smtp/body_scanner.hpp"

#include <algorithm>

#include "smtp/mime_params.hpp"
#include "util/ascii.hpp"
#include "util/line_bytes.hpp"

namespace sg::smtp {
namespace {

// The body-phase bytes of a line kept for boundary matching: "--" boundary "--".
constexpr size_t kLineKeep = BodyScanner::kMaxBoundary + 4;

// RFC 5322 2.2: field-name = 1*(printable ASCII but ':'), then (obsolete syntax, still sent)
// white space before the colon. Returns the colon's index, or npos.
size_t field_colon(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && is_vchar(line[i]) && line[i] != ':') ++i;
  if (i == 0) return std::string_view::npos;
  while (i < line.size() && is_sp_or_htab(line[i])) ++i;
  return (i < line.size() && line[i] == ':') ? i : std::string_view::npos;
}

std::string_view field_name(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && is_vchar(line[i]) && line[i] != ':') ++i;
  return line.substr(0, i);
}

void escape_into(uint8_t c, std::string& out) {
  switch (c) {
    case '\r':
      out += "\\r";
      break;
    case '\n':
      out += "\\n";
      break;
    case 0:
      out += "\\0";
      break;
    default:
      out.push_back(static_cast<char>(c));
  }
}

}  // namespace

std::string_view to_string(BodyEventKind k) {
  switch (k) {
#define SG_X(name, text)    \
  case BodyEventKind::name: \
    return text;
    SG_BODY_EVENTS(SG_X)
#undef SG_X
  }
  return "?";
}

BodyScanner::BodyScanner(BodyLimits limits) : limits_(limits) {
  limits_.max_mime_depth = std::min(limits_.max_mime_depth, kMaxMimeDepth);
  if (!limits_.headers) {
    limits_.mime = false;  // MIME structure is read from the headers
    top_headers_ = false;
    entity_.headers = false;
  }
  frames_.reserve(limits_.max_mime_depth);
  buf_.reserve(kFieldCap);
}

size_t BodyScanner::feed(std::span<const uint8_t> bytes, std::vector<BodyEvent>& out) {
  if (finished_) return 0;
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    // A run of bytes other than CR, LF and NUL changes only counters (and starts a line): it is
    // taken at once. Not after a CR (the next byte decides whether it was bare) nor after ".\r".
    if (!prev_cr_ && (win_count_ == 0 || prev(1) != '\r')) {
      if (!entity_.headers &&
          (frames_.empty() || line_len_ == 0 || buf_.empty() || buf_[0] != '-')) {
        // Body lines that cannot be a boundary line: whole lines at a time.
        i = take_plain_lines(bytes, i, out);
        if (i == n) break;
        step(bytes[i++], out);  // the byte that needs a look of its own
        if (ended_) {
          finish(out);
          return i;
        }
        continue;
      }
      const size_t run = find_line_byte(bytes.subspan(i));
      if (run != 0) {
        take_run(bytes.subspan(i, run), out);
        i += run;
        if (i == n) break;
      }
      // bytes[i] is a CR, LF or NUL. The common end of a line of a body: CRLF, nothing to
      // report but its length.
      if (i + 1 < n && bytes[i] == '\r' && bytes[i + 1] == '\n' && plain_crlf()) {
        take_crlf(out);
        i += 2;
        continue;
      }
    }
    step(bytes[i++], out);
    if (ended_) {
      finish(out);
      return i;
    }
  }
  return n;
}

size_t BodyScanner::take_plain_lines(std::span<const uint8_t> bytes, size_t i,
                                     std::vector<BodyEvent>& out) {
  // step() for every byte up to the first that is not text or a CRLF ending a line, or after
  // which no dot line can end, or that starts a line that may be a boundary: all they change is
  // the line's start, its length, the longest line, the size and the window. Kept in locals,
  // stored once.
  const size_t n = bytes.size();
  if (size_ == 0) {  // headers = false: the message starts here
    if (is_line_byte(bytes[i])) return i;
    out.push_back({BodyEventKind::kMimePart, 0, 0, {}});
  }
  const uint64_t base = size_ - i;  // the message offset of bytes[0]
  const uint64_t limit = top_headers_ ? limits_.max_header_line : limits_.max_body_line;
  const BodyEventKind long_kind =
      top_headers_ ? BodyEventKind::kHeaderLineLong : BodyEventKind::kBodyLineLong;
  uint64_t len = line_len_, start = line_start_;
  uint64_t longest = top_headers_ ? longest_header_ : longest_body_;
  bool started = false;  // a line began here
  uint8_t last = win_count_ != 0 ? prev(1) : 0;
  // Inside a MIME container a line that starts with '-' may be a boundary: it is left to step(),
  // which keeps its first bytes; any other line is not, and its bytes are kept nowhere.
  const bool boundaries = !frames_.empty();
  if (line_len_ != 0) keep_cap_ = 0;
  size_t p = i;
  for (;;) {
    if (boundaries && len == 0 && p < n && bytes[p] == '-') break;
    const size_t run = find_line_byte(bytes.subspan(p));
    // A CRLF after the run, not after a '.': a dot line needs a '.' right before its CR.
    const bool crlf = p + run + 1 < n && bytes[p + run] == '\r' && bytes[p + run + 1] == '\n' &&
                      (run != 0 ? bytes[p + run - 1] : last) != '.';
    if (len == 0 && (run != 0 || crlf)) {
      start = base + p;  // the line's first byte: a text byte or its CR
      started = true;
    }
    const size_t k = run + 2;  // with the CRLF
    if (crlf) {
      if (limit != 0 && len <= limit && len + k > limit)
        out.push_back({long_kind, start, limit + 1, {}});
      longest = std::max(longest, len + k);
      len = 0;
      p += k;
      last = '\n';
      continue;
    }
    if (limit != 0 && len <= limit && len + run > limit)
      out.push_back({long_kind, start, limit + 1, {}});
    len += run;
    p += run;
    break;
  }
  if (started) {  // start_line() of a body line, as of the last one begun
    line_start_ = start;
    line_kept_ = 0;
    line_top_ = top_headers_;
    continuation_ = false;
    keep_cap_ = 0;
    buf_.clear();
  }
  line_len_ = len;
  (top_headers_ ? longest_header_ : longest_body_) = longest;
  for (size_t q = p - std::min<size_t>(p - i, 4); q < p; ++q) push_window(bytes[q], base + q);
  size_ = base + p;
  return p;
}

bool BodyScanner::plain_crlf() const {
  // What step() would do for this CR and LF, when it reports nothing but a line length: inside a
  // line of a body (no header field to parse), after no '.' and no CR (no dot line can end here),
  // and not a line a boundary could start ("--").
  if (line_len_ == 0 || entity_.headers) return false;
  if (win_count_ != 0 && (prev(1) == '.' || prev(1) == '\r')) return false;
  return frames_.empty() || buf_.size() < 2 || buf_[0] != '-' || buf_[1] != '-';
}

void BodyScanner::take_crlf(std::vector<BodyEvent>& out) {
  // step('\r'), step('\n'), end_line(): the counters only. buf_ needs neither byte: in a body
  // it is read by match_boundary alone, which plain_crlf() ruled out.
  count_line_bytes(2, out);
  push_window('\r', size_);
  push_window('\n', size_ + 1);
  size_ += 2;
  uint64_t& longest = line_top_ ? longest_header_ : longest_body_;
  longest = std::max(longest, line_len_);
  line_len_ = 0;
}

void BodyScanner::count_line_bytes(uint64_t k, std::vector<BodyEvent>& out) {
  const uint64_t limit = line_top_ ? limits_.max_header_line : limits_.max_body_line;
  if (limit != 0 && line_len_ <= limit && line_len_ + k > limit) {
    out.push_back({line_top_ ? BodyEventKind::kHeaderLineLong : BodyEventKind::kBodyLineLong,
                   line_start_,
                   limit + 1,
                   {}});
  }
  line_len_ += k;
}

void BodyScanner::take_run(std::span<const uint8_t> run, std::vector<BodyEvent>& out) {
  // Exactly what step() does for each of these bytes: none is CR, LF or NUL, and none follows a
  // CR, so none ends a dot line or reports a stray byte; the first may start a line.
  if (size_ == 0) out.push_back({BodyEventKind::kMimePart, 0, 0, {}});
  if (line_len_ == 0) start_line(run[0], size_, out);
  count_line_bytes(run.size(), out);
  if (entity_.headers) field_len_ += run.size();
  const size_t room = keep_cap_ > buf_.size() ? keep_cap_ - buf_.size() : 0;
  const size_t take = std::min(room, run.size());
  buf_.append(reinterpret_cast<const char*>(run.data()), take);
  line_kept_ += take;
  if (take < run.size() && entity_.headers) field_cut_ = true;
  for (size_t k = run.size() > 4 ? run.size() - 4 : 0; k < run.size(); ++k)
    push_window(run[k], size_ + k);
  size_ += run.size();
}

void BodyScanner::push_window(uint8_t c, uint64_t off) {
  win_[win_pos_ & 3] = c;
  win_off_[win_pos_ & 3] = off;
  ++win_pos_;
  if (win_count_ < 4) ++win_count_;
}

void BodyScanner::step(uint8_t c, std::vector<BodyEvent>& out) {
  const uint64_t off = size_++;
  if (off == 0) out.push_back({BodyEventKind::kMimePart, 0, 0, {}});
  // Smuggling material, byte by byte: what a lax server might take for a line end.
  if (prev_cr_ && c != '\n') out.push_back({BodyEventKind::kBareCr, off - 1, 0, {}});
  if (c == '\n' && !prev_cr_) out.push_back({BodyEventKind::kBareLf, off, 0, {}});
  if (c == 0) out.push_back({BodyEventKind::kNul, off, 0, {}});
  prev_cr_ = c == '\r';
  if (c != 0 && scan_dot(c, off, out)) return;

  if (line_len_ == 0) start_line(c, off, out);
  count_line_bytes(1, out);
  if (entity_.headers) ++field_len_;
  if (buf_.size() < keep_cap_) {
    buf_.push_back(static_cast<char>(c));
    ++line_kept_;
  } else if (entity_.headers && c != '\r' && c != '\n') {
    field_cut_ = true;
  }
  if (c == '\n') end_line(off, out);
}

bool BodyScanner::scan_dot(int c, uint64_t off, std::vector<BodyEvent>& out) {
  // b(1) is the newest byte before c. The candidate is B "." A with A = LF (dot at b(1)),
  // CR LF or a CR not followed by LF (dot at b(2)); NULs in between are skipped, which makes
  // "\r\n\0.\r\n" a candidate too (a server that drops NULs ends the message there).
  const auto has = [&](int k) { return win_count_ >= k; };
  const auto b = [&](int k) { return prev(k); };
  const auto b_off = [&](int k) { return prev_off(k); };
  int dot = 0;  // window index of the dot
  uint64_t a_end = 0;
  if (c == '\n' && has(1) && b(1) == '.') {
    dot = 1;
    a_end = off;
  } else if (has(2) && b(1) == '\r' && b(2) == '.') {
    dot = 2;
    a_end = c == '\n' ? off : b_off(1);
  }
  if (dot != 0) {
    // B: the line break before the dot; the message start counts as one.
    const int k = dot + 1;
    bool is_break = true, crlf_or_start = false;
    uint64_t b_start = 0;
    int first = k;  // window index of B's first byte (0: the message start)
    if (!has(k)) {
      crlf_or_start = true;
      first = 0;
    } else if (b(k) == '\n' && has(k + 1) && b(k + 1) == '\r') {
      crlf_or_start = true;
      first = k + 1;
      b_start = b_off(k + 1);
    } else if (b(k) == '\n' || b(k) == '\r') {
      b_start = b_off(k);
    } else {
      is_break = false;
    }
    if (is_break) {
      const uint64_t len = a_end - b_start + 1;
      const bool canonical = dot == 2 && c == '\n' && crlf_or_start && len == (first ? 5u : 3u);
      if (canonical) {
        out.push_back({BodyEventKind::kBodyEnd, b_off(dot), a_end + 1, {}});
        if (limits_.dot_terminated) {
          ended_ = true;
          end_dot_ = b_off(dot);
          field_open_ = false;  // the terminator line is no header field
          return true;
        }
      } else {
        // The bytes from B to A: the window's bytes with the skipped NULs between them.
        std::string text;
        uint64_t at = b_start;
        for (int i = first ? first : dot; i >= 1; --i) {
          for (; at < b_off(i); ++at) escape_into(0, text);
          escape_into(b(i), text);
          at = b_off(i) + 1;
        }
        if (a_end == off) {
          for (; at < off; ++at) escape_into(0, text);
          escape_into(static_cast<uint8_t>(c), text);
        }
        out.push_back({BodyEventKind::kDotLine, b_off(dot), a_end + 1, std::move(text)});
      }
    }
  }
  if (c >= 0) push_window(static_cast<uint8_t>(c), off);
  return false;
}

void BodyScanner::start_line(uint8_t c, uint64_t off, std::vector<BodyEvent>& out) {
  line_start_ = off;
  line_kept_ = 0;
  line_top_ = top_headers_;
  continuation_ = false;
  if (entity_.headers) {
    if (is_sp_or_htab(static_cast<char>(c)) && field_open_) {
      continuation_ = true;  // folded (RFC 5322 2.2.3): the line belongs to the open field
      return;
    }
    if (field_open_) complete_field(out);
    field_open_ = true;
    field_cut_ = false;
    field_start_ = off;
    field_len_ = 0;
    keep_cap_ = kFieldCap;
  } else {
    keep_cap_ = frames_.empty() ? 0 : kLineKeep;
  }
  buf_.clear();
}

void BodyScanner::end_line(uint64_t off, std::vector<BodyEvent>& out) {
  uint64_t& longest = line_top_ ? longest_header_ : longest_body_;
  longest = std::max(longest, line_len_);
  if (entity_.headers && line_kept_ == line_len_) {
    buf_.pop_back();  // unfold: the line break goes, the white space after it stays
    if (line_len_ >= 2 && buf_.back() == '\r') buf_.pop_back();
  }
  const bool all_kept = line_kept_ == line_len_;
  line_len_ = 0;
  if (continuation_) return;
  if (!frames_.empty() && match_boundary(off, out)) return;
  if (!entity_.headers) return;
  if (all_kept && buf_.empty()) {
    field_open_ = false;
    end_headers(off + 1, false, out);
  } else if (field_colon(buf_) == std::string_view::npos) {
    // Not a header field: like Postfix, the header section ends and this line is body.
    field_open_ = false;
    end_headers(line_start_, true, out);
  }
}

bool BodyScanner::match_boundary(uint64_t off, std::vector<BodyEvent>& out) {
  // RFC 2046 5.1.1: the boundary only has to start the line ("--" boundary), and an enclosing
  // boundary ends the inner parts too. The innermost boundary is tried first (as Postfix does).
  if (buf_.size() < 3 || buf_[0] != '-' || buf_[1] != '-') return false;
  for (size_t k = frames_.size(); k-- > 0;) {
    const std::string& b = frames_[k].boundary;
    if (frames_[k].message || buf_.size() < b.size() + 2 || buf_.compare(2, b.size(), b) != 0)
      continue;
    const bool close =
        buf_.size() >= b.size() + 4 && buf_[b.size() + 2] == '-' && buf_[b.size() + 3] == '-';
    if (entity_.part) {
      out.push_back({BodyEventKind::kMimePartEnd, entity_.start, line_start_ - entity_.start, {}});
    }
    field_open_ = false;  // the boundary line itself is no field
    while (frames_.size() > k + 1) close_frame(line_start_, out);
    if (close) {
      close_frame(line_start_, out);
      entity_ = Entity{};
      entity_.start = off + 1;
      entity_.part = false;  // the epilogue
      entity_.headers = false;
    } else {
      open_part(off + 1, static_cast<uint32_t>(k + 1), out);
    }
    return true;
  }
  return false;
}

void BodyScanner::complete_field(std::vector<BodyEvent>& out) {
  field_open_ = false;
  const std::string_view field = buf_;
  const size_t colon = field_colon(field);
  if (colon == std::string_view::npos) return;
  const std::string_view name = field_name(field);
  const std::string_view value = field.substr(colon + 1);
  if (field_cut_) out.push_back({BodyEventKind::kHeaderFieldCut, field_start_, field_len_, {}});
  // ASA's "to-fields count" counts fields named To (any case), not the addresses in them.
  if (top_headers_ && iequals(name, "To")) {
    out.push_back({BodyEventKind::kToField, field_start_, ++to_fields_, {}});
  }
  if (!limits_.mime) return;
  if (iequals(name, "Content-Type")) {
    // The last Content-Type of an entity decides.
    const std::string_view type = mime::leading_token(value);
    entity_.multipart = istarts_with(type, "multipart/");
    entity_.message = iequals(type, "message/rfc822") || iequals(type, "message/global");
    if (entity_.multipart) entity_.boundary = mime::plain_param(value, "boundary");
    report_names(value, "name", out);
  } else if (iequals(name, "Content-Disposition")) {
    report_names(value, "filename", out);
  } else if (iequals(name, "Content-Transfer-Encoding")) {
    const std::string_view encoding = mime::leading_token(value);
    if (!encoding.empty())
      out.push_back({BodyEventKind::kMimeEncoding, field_start_, 0, std::string(encoding)});
  }
}

void BodyScanner::report_names(std::string_view value, std::string_view param,
                               std::vector<BodyEvent>& out) {
  names_.clear();
  mime::param_values(value, param, names_);
  for (std::string& n : names_) {
    if (n.empty() || n == entity_.last_name) continue;
    entity_.last_name = n;
    const uint64_t chars = mime::count_chars(n);
    out.push_back({BodyEventKind::kMimeFilename, field_start_, chars, std::move(n)});
  }
}

void BodyScanner::end_headers(uint64_t body_start, bool no_blank, std::vector<BodyEvent>& out) {
  entity_.headers = false;
  if (top_headers_) {
    top_headers_ = false;
    out.push_back({BodyEventKind::kHeaderEnd, body_start, no_blank ? 1u : 0u, {}});
  }
  if (!entity_.multipart && !entity_.message) return;
  if (entity_.multipart && (entity_.boundary.empty() || entity_.boundary.size() > kMaxBoundary)) {
    out.push_back({BodyEventKind::kMimeBadBoundary, entity_.start, entity_.boundary.size(), {}});
    return;
  }
  if (frames_.size() >= limits_.max_mime_depth) {
    out.push_back({BodyEventKind::kMimeDepth, entity_.start, limits_.max_mime_depth, {}});
    return;
  }
  frames_.push_back({entity_.start, entity_.message, std::move(entity_.boundary)});
  const auto depth = static_cast<uint32_t>(frames_.size());
  if (entity_.message) {
    open_part(body_start, depth, out);  // the encapsulated message: headers first
    return;
  }
  out.push_back(
      {BodyEventKind::kMimeMultipart, frames_.back().start, depth, frames_.back().boundary});
  entity_ = Entity{};
  entity_.start = body_start;
  entity_.part = false;  // the preamble
  entity_.headers = false;
}

void BodyScanner::open_part(uint64_t start, uint32_t depth, std::vector<BodyEvent>& out) {
  entity_ = Entity{};
  entity_.start = start;
  field_open_ = false;
  out.push_back({BodyEventKind::kMimePart, start, depth, {}});
}

void BodyScanner::close_frame(uint64_t end, std::vector<BodyEvent>& out) {
  const uint64_t start = frames_.back().start;
  frames_.pop_back();
  out.push_back({BodyEventKind::kMimePartEnd, start, end - start, {}});
}

void BodyScanner::close_all(uint64_t end, std::vector<BodyEvent>& out) {
  if (size_ == 0) return;
  if (entity_.part)
    out.push_back({BodyEventKind::kMimePartEnd, entity_.start, end - entity_.start, {}});
  entity_.part = false;
  while (!frames_.empty()) close_frame(end, out);
}

void BodyScanner::finish(std::vector<BodyEvent>& out) {
  if (finished_) return;
  finished_ = true;
  if (!ended_) {
    if (prev_cr_) out.push_back({BodyEventKind::kBareCr, size_ - 1, 0, {}});
    scan_dot(-1, size_, out);  // "\r\n.\r" as the last bytes
    if (line_len_ != 0) {
      uint64_t& longest = line_top_ ? longest_header_ : longest_body_;
      longest = std::max(longest, line_len_);
    }
    if (entity_.headers && field_open_) complete_field(out);
  }
  close_all(ended_ ? end_dot_ : size_, out);
}

}  // namespace sg::smtp
