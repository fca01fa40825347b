#pragma once
// BodyScanner as it was before the bulk fast paths (commit 47eb7e3), byte for byte but for its
// name: the reference the differential test (tests/smtp/body_scanner_bulk_test.cpp) holds the
// scanner to, and the baseline bench/body_scan.cpp measures it against in the same run. Same
// events, limits and contract as smtp::BodyScanner (smtp/body_scanner.hpp); not for the daemon.
#include "smtp/body_scanner.hpp"

namespace sg::smtp::reference {

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
  // A run of bytes inside a line, none of them CR, LF or NUL: step() for each, in bulk.
  void take_run(std::span<const uint8_t> run, std::vector<BodyEvent>& out);
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

}  // namespace sg::smtp::reference
