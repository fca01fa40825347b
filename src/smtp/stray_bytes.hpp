#pragma once
// The bytes of a message that check.smuggling = sanitize turns into spaces: every CR not
// followed by LF, every LF not preceded by CR, every NUL. A CRLF pair is never touched and no
// byte is ever inserted (turning a bare LF into CRLF is how smuggling is made), so after the
// replacement the message holds no line ending but CRLF and no NUL: no server can find an end
// of data in it other than the real CRLF.CRLF (DATA) or the byte count (BDAT), which stay where
// they were. Same length: no sequence number changes.
//
// Pure and incremental: fed the message's bytes at their stream offsets (BDAT chunks leave gaps
// for the command lines between them; the message is the chunks joined), in any segmentation,
// it reports the same offsets. One byte cannot be decided when it arrives: a CR as the last byte
// so far, whose fate is the next message byte's. It stays undecided until that byte arrives,
// the message ends, or the caller gives up waiting (settle); a CR settled that way is stray,
// and so is an LF that follows it (its CR is a space by then).
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace sg::smtp {

class StrayBytes {
 public:
  // The next message bytes, starting at stream offset `pos` (at or after the end of the bytes
  // fed before). Appends the stream offsets of the bytes decided stray to `out`, in order.
  void feed(uint64_t pos, std::span<const uint8_t> bytes, std::vector<uint64_t>& out);
  // Decides the undecided CR, if any, as stray (end of the message, or no next byte in time).
  // True when there was one.
  bool settle(std::vector<uint64_t>& out);
  // The stream offset of a CR whose next byte has not arrived yet.
  std::optional<uint64_t> undecided() const { return cr_; }

 private:
  std::optional<uint64_t> cr_;
};

}  // namespace sg::smtp
