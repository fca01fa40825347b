#pragma once
// One direction's sequence space: maps 32-bit sequence numbers to 64-bit stream offsets
// (offset 0 is the byte after the SYN), across wraparound.
#include <cstdint>

namespace sg::tcp {

class SeqSpace {
 public:
  SeqSpace() = default;
  explicit SeqSpace(uint32_t isn) : base_(isn + 1), known_(true) {}

  bool known() const { return known_; }
  // The stream offset of `seq`, taken as the one nearest to `near` (an offset already seen):
  // segments never lie more than 2^31 bytes from the stream's frontier.
  uint64_t offset(uint32_t seq, uint64_t near) const {
    const auto near_seq = static_cast<uint32_t>(base_ + static_cast<uint32_t>(near));
    const auto delta = static_cast<int32_t>(seq - near_seq);
    const int64_t off = static_cast<int64_t>(near) + delta;
    return off < 0 ? 0 : static_cast<uint64_t>(off);
  }
  // The same, signed: negative for a sequence number before the stream's start (ISN + 1), which
  // a receiver trims and offset() would place at 0.
  int64_t signed_offset(uint32_t seq, uint64_t near) const {
    const auto near_seq = static_cast<uint32_t>(base_ + static_cast<uint32_t>(near));
    return static_cast<int64_t>(near) + static_cast<int32_t>(seq - near_seq);
  }
  uint32_t seq(uint64_t offset) const { return base_ + static_cast<uint32_t>(offset); }

 private:
  uint32_t base_ = 0;  // sequence number of stream offset 0
  bool known_ = false;
};

}  // namespace sg::tcp
