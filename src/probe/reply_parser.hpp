#pragma once
// Incremental SMTP reply parser: fed bytes as they arrive, it hands out complete replies. The
// probe talks to whatever is on the path, so it is lenient and bounded:
//  - a line ends at LF (a CR before it is dropped; a bare LF is accepted);
//  - only "NNN-" continues a reply. Every other line ends it, including the "220****" a PIX
//    sends (no separator after the code) and lines without a code at all (code 0): waiting for
//    a "proper" final line could wait forever;
//  - a line is kept up to kMaxLineBytes (the rest is dropped, the reply marked truncated) and a
//    reply up to kMaxReplyLines (then it ends, marked truncated).
#include <cstddef>
#include <deque>
#include <string>
#include <string_view>

#include "probe/transcript.hpp"

namespace sg::probe {

class ReplyParser {
 public:
  static constexpr size_t kMaxLineBytes = 4096;
  static constexpr size_t kMaxReplyLines = 256;

  void feed(std::string_view bytes);
  bool has_reply() const { return !ready_.empty(); }
  Reply take();  // the oldest complete reply; only when has_reply()
  // Bytes of an unfinished line or reply, and any complete replies not taken yet.
  bool idle() const { return ready_.empty() && line_.empty() && !open_ && !cutting_; }
  // Everything received but not yet part of a taken reply, as raw text (for the report).
  std::string leftover() const;

 private:
  void end_line();

  std::deque<Reply> ready_;
  Reply current_;
  bool open_ = false;     // current_ has lines
  std::string line_;      // the line being received
  bool cutting_ = false;  // the line is over kMaxLineBytes: drop until LF
};

// "250-SIZE 1000" is a continuation line; "250 OK", "220****", "OK" end a reply.
bool is_continuation(std::string_view line);
// The code of a line: its first three characters when they are digits, else 0.
int reply_code(std::string_view line);

}  // namespace sg::probe
