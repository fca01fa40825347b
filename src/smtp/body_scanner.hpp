#pragma once
// One pass over the bytes of ONE message (a DATA body after the 354, terminator included, or the
// bytes of its BDAT chunks), in any chunking, reporting what the policy's message checks need:
// header and body line lengths, To: fields, MIME parts with their file names and transfer
// encodings, the size, and every byte sequence that SMTP smuggling (CVE-2023-51764/51765/51766)
// is made of. Pure: no I/O, no exceptions. Events depend only on the bytes, never on how they
// were cut into chunks (the tests feed every split point).
//
// Memory is bounded: one buffer of kFieldCap bytes (the current unfolded header field, or the
// first bytes of a body line while a MIME boundary is open), a stack of at most
// BodyLimits::max_mime_depth open MIME containers, and nothing per byte. Events are appended to a
// vector the caller owns and clears.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sg::smtp {

// X(enum name, name in logs) /* offset; value; text */. Offsets count from the message's first
// byte (0). Events at the same byte come in a fixed order.
#define SG_BODY_EVENTS(X)                                                                         \
  /* the top-level header section ended. offset: first body byte; value: 0 after an empty */      \
  /* line, 1 at a line that is no header field (counted as a header line, read as body) */        \
  X(kHeaderEnd, "header_end")                                                                     \
  /* a top-level header line got longer than max_header_line (sent once per line, on its first */ \
  /* byte past the limit). offset: line start; value: limit + 1 */                                \
  X(kHeaderLineLong, "header_line_long")                                                          \
  /* a header field (folded lines joined) longer than kFieldCap: the rest is not parsed. */       \
  /* offset: field start; value: its bytes */                                                     \
  X(kHeaderFieldCut, "header_field_cut")                                                          \
  /* a top-level To: field. offset: field start; value: To: fields so far */                      \
  X(kToField, "to_field")                                                                         \
  /* a line after the top-level headers got longer than max_body_line. as kHeaderLineLong */      \
  X(kBodyLineLong, "body_line_long")                                                              \
  /* a MIME entity starts: the message (depth 0), a part of a multipart, or a message inside */   \
  /* a message/rfc822 part. offset: its first byte (its headers); value: depth */                 \
  X(kMimePart, "mime_part")                                                                       \
  /* a multipart entity's boundary is now tracked. offset: entity start; value: depth of its */   \
  /* parts; text: the boundary */                                                                 \
  X(kMimeMultipart, "mime_multipart")                                                             \
  /* an attachment file name (Content-Disposition filename, Content-Type name), decoded. */       \
  /* offset: field start; value: characters (UTF-8); text: the name */                            \
  X(kMimeFilename, "mime_filename")                                                               \
  /* a Content-Transfer-Encoding. offset: field start; text: the value's token as sent */         \
  X(kMimeEncoding, "mime_encoding")                                                               \
  /* a MIME entity ends (at the boundary line after it, or the end of the message). */            \
  /* offset: its start; value: its bytes, headers included, up to the boundary line */            \
  X(kMimePartEnd, "mime_part_end")                                                                \
  /* a multipart or message/rfc822 entity deeper than max_mime_depth: its inside is not */        \
  /* parsed. offset: entity start; value: the limit */                                            \
  X(kMimeDepth, "mime_depth_exceeded")                                                            \
  /* a multipart entity without a usable boundary (none, empty, longer than kMaxBoundary): */     \
  /* its inside is not parsed. offset: entity start; value: boundary bytes */                     \
  X(kMimeBadBoundary, "mime_bad_boundary")                                                        \
  /* a CR not followed by LF. offset: the CR */                                                   \
  X(kBareCr, "bare_cr")                                                                           \
  /* an LF not preceded by CR. offset: the LF */                                                  \
  X(kBareLf, "bare_lf")                                                                           \
  X(kNul, "nul") /* a NUL byte. offset: the NUL */                                                \
  /* a '.' alone between two line breaks (CRLF, bare LF or bare CR; NULs around it ignored) */    \
  /* that is not the canonical CRLF.CRLF: an end-of-data some other server may see. */            \
  /* offset: the dot; value: offset after the sequence; text: the sequence, escaped (\r\n\0) */   \
  X(kDotLine, "dot_line")                                                                         \
  /* the canonical CRLF "." CRLF (or "." CRLF as the first bytes). offset: the dot; value: */     \
  /* offset after the LF. It ends a DATA body; inside BDAT chunks it is just reported. */         \
  X(kBodyEnd, "body_end")

enum class BodyEventKind : uint8_t {
#define SG_X(name, text) name,
  SG_BODY_EVENTS(SG_X)
#undef SG_X
};
std::string_view to_string(BodyEventKind k);

struct BodyEvent {
  BodyEventKind kind = BodyEventKind::kHeaderEnd;
  uint64_t offset = 0;  // from the message's first byte; what it points at depends on the kind
  uint64_t value = 0;   // kind-specific number
  std::string text;     // kind-specific text (file name, encoding, boundary, escaped bytes)
  bool operator==(const BodyEvent&) const = default;
};

struct BodyLimits {
  uint64_t max_header_line = 0;  // bytes of a top-level header line, line ending included; 0: off
  uint64_t max_body_line = 0;    // bytes of any later line, line ending included; 0: off
  uint32_t max_mime_depth = 8;   // open multipart/message entities tracked (capped at
                                 // BodyScanner::kMaxMimeDepth); 0: only the top level is read
  bool dot_terminated = true;    // DATA: CRLF.CRLF ends the message. false: BDAT chunks
  // What the checks need read. false skips the work: no MIME entities inside the message (no
  // kMimeMultipart, kMimeFilename, kMimeEncoding, kMimeDepth, kMimeBadBoundary; the message
  // itself is still one kMimePart), or no header sections at all (no kHeaderEnd, kToField,
  // kHeaderFieldCut, kHeaderLineLong: every line is a body line; implies mime = false).
  bool mime = true;
  bool headers = true;
};

class BodyScanner {
 public:
  static constexpr size_t kFieldCap = 4096;      // bytes of one unfolded header field parsed
  static constexpr size_t kMaxBoundary = 998;    // longest boundary tracked (RFC 2046 says 70)
  static constexpr uint32_t kMaxMimeDepth = 32;  // hard cap on BodyLimits::max_mime_depth

  explicit BodyScanner(BodyLimits limits = {});

  // Scans the next bytes of the message, appending events to `out`. Returns the bytes consumed:
  // all of them, except that a DATA body ends with its CRLF.CRLF - what follows it is the next
  // command, not message. The end of a DATA body finishes the scan (see finish).
  size_t feed(std::span<const uint8_t> bytes, std::vector<BodyEvent>& out);
  // The message is complete (the last BDAT chunk, or a DATA body cut short): reports what only
  // the end decides - a bare CR as the last byte, a ".\r" at the end, the last header field of a
  // message without body, the end of every open MIME entity. Later feeds consume nothing.
  void finish(std::vector<BodyEvent>& out);

  uint64_t size() const { return size_; }           // bytes consumed (DATA: terminator included)
  bool in_headers() const { return top_headers_; }  // still in the top-level header section
  bool ended() const { return ended_; }             // a DATA body's CRLF.CRLF was consumed
  bool finished() const { return finished_; }
  uint32_t to_fields() const { return to_fields_; }
  uint64_t longest_header_line() const { return longest_header_; }  // line ending included
  uint64_t longest_body_line() const { return longest_body_; }
  size_t mime_depth() const { return frames_.size(); }  // open multipart/message containers

 private:
  // The entity whose lines are being read.
  struct Entity {
    uint64_t start = 0;
    bool part = true;        // false: a multipart's preamble or epilogue (no headers, no part)
    bool headers = true;     // reading its header section
    bool multipart = false;  // its Content-Type is multipart/*
    bool message = false;    // its Content-Type is message/rfc822 or message/global
    std::string boundary;
    std::string last_name;  // the file name reported last: the same name is reported once
  };
  // An open container: a multipart (its boundary tracked) or a message/rfc822 part.
  struct Frame {
    uint64_t start = 0;
    bool message = false;
    std::string boundary;
  };

  void step(uint8_t c, std::vector<BodyEvent>& out);
  // A run of bytes, none of them CR, LF or NUL, not after a CR: step() for each, in bulk.
  void take_run(std::span<const uint8_t> run, std::vector<BodyEvent>& out);
  // Body lines (no header section) that cannot be boundary lines, from bytes[i]: take_run() and
  // take_crlf() for as long as they apply. Returns the index of the first byte left for step()
  // (or bytes.size()).
  size_t take_plain_lines(std::span<const uint8_t> bytes, size_t i, std::vector<BodyEvent>& out);
  // Whether a CRLF now would only end a body line (no event but its length, nothing to parse).
  bool plain_crlf() const;
  void take_crlf(std::vector<BodyEvent>& out);  // step() for that CR and LF, in bulk
  // k more bytes on the current line: its length and the line-length limit.
  void count_line_bytes(uint64_t k, std::vector<BodyEvent>& out);
  // The dot-line recogniser, fed every byte but NUL (c < 0: the end of the message). Returns
  // true at the end of a DATA body.
  bool scan_dot(int c, uint64_t off, std::vector<BodyEvent>& out);
  void start_line(uint8_t c, uint64_t off, std::vector<BodyEvent>& out);
  void end_line(uint64_t off, std::vector<BodyEvent>& out);
  bool match_boundary(uint64_t off, std::vector<BodyEvent>& out);
  void complete_field(std::vector<BodyEvent>& out);
  void report_names(std::string_view value, std::string_view param, std::vector<BodyEvent>& out);
  void end_headers(uint64_t body_start, bool no_blank, std::vector<BodyEvent>& out);
  void open_part(uint64_t start, uint32_t depth, std::vector<BodyEvent>& out);
  void close_frame(uint64_t end, std::vector<BodyEvent>& out);
  void close_all(uint64_t end, std::vector<BodyEvent>& out);

  BodyLimits limits_;
  uint64_t size_ = 0;
  bool ended_ = false;
  bool finished_ = false;
  bool prev_cr_ = false;  // the last byte was CR
  uint64_t end_dot_ = 0;  // DATA: offset of the terminator's dot

  // The last four bytes other than NUL and their offsets, as a ring (dot-line recogniser).
  // prev(1) is the newest.
  uint8_t prev(int k) const { return win_[(win_pos_ - k) & 3]; }
  uint64_t prev_off(int k) const { return win_off_[(win_pos_ - k) & 3]; }
  void push_window(uint8_t c, uint64_t off);
  uint8_t win_[4] = {};
  uint64_t win_off_[4] = {};
  unsigned win_pos_ = 0;  // bytes pushed (mod 4: the next slot)
  uint8_t win_count_ = 0;

  // The current line (LF-terminated; a bare CR ends no line).
  uint64_t line_start_ = 0;
  uint64_t line_len_ = 0;      // 0: the next byte starts a line
  uint64_t line_kept_ = 0;     // bytes of this line stored in buf_
  bool line_top_ = true;       // it began in the top-level header section
  bool continuation_ = false;  // it continues a folded header field
  size_t keep_cap_ = 0;        // how many bytes buf_ may hold

  // The current header field (header section) or the first bytes of the line (body).
  std::string buf_;
  bool top_headers_ = true;
  bool field_open_ = false;
  bool field_cut_ = false;
  uint64_t field_start_ = 0;
  uint64_t field_len_ = 0;

  uint32_t to_fields_ = 0;
  uint64_t longest_header_ = 0;
  uint64_t longest_body_ = 0;
  Entity entity_;
  std::vector<Frame> frames_;
  std::vector<std::string> names_;  // scratch for decoded parameter values
};

}  // namespace sg::smtp
