#pragma once
// One direction's mapping between the ORIGINAL stream (offsets the sender numbers) and the
// REWRITTEN stream (what the receiver sees) under length-changing edits.
//
// Offsets are 64-bit stream offsets from ISN+1, as in SeqSpace; the rewritten stream starts at
// the same ISN, so both spaces share one SeqSpace for 32-bit conversion.
//
// Every edit whose replacement the receiver has not acknowledged is kept in an ordered list (not
// the kernel's single correction point), so that a retransmission of any older range maps exactly
// as the first transmission did. Acknowledged edits are folded into one base delta by prune().
//
// Same-length edits are not recorded: they map byte for byte, so identity is exact both ways.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tcp/seq_space.hpp"

namespace sg::tcp {

class SeqMap {
 public:
  // Longest range an edit may remove or insert: a 32-bit sequence number can only tell offsets
  // apart within 2^31 of each other, so a larger edit could not be mapped back anyway.
  static constexpr uint64_t kMaxEditLen = uint64_t{1} << 31;

  // Records that original bytes [pos, pos + old_len) become new_len bytes (deletion: new_len 0;
  // insertion: old_len 0). Edits must come in stream order without overlap: pos is at or after
  // the end of the previous edit (pruned ones included). Several insertions at one pos are kept in
  // call order. Returns false, changing nothing, when the order is violated, when a length exceeds
  // kMaxEditLen, or when pos + old_len overflows. Same-length edits are accepted and ignored.
  bool add(uint64_t pos, uint64_t old_len, uint64_t new_len);

  // Original -> rewritten, for the first byte of a segment (its seq):
  //  - before an edit: identity plus the deltas (new_len - old_len) of all edits before it;
  //  - at or after the end of an edit: that edit's delta is included. An insertion at pos is not
  //    "before" offset pos: pos maps to the START of the inserted bytes, so they travel with the
  //    segment that carries original byte pos;
  //  - inside an edited range [pos, pos + old_len), pos + k maps to the start of the replacement
  //    plus min(k, new_len): a retransmission starting inside an edit lands on the matching byte
  //    of a longer replacement, or just past a shorter one (deleted bytes map to the point where
  //    they were removed). Monotone non-decreasing in `orig`.
  // Offsets before frontier() (already acknowledged, edits pruned) map with the base delta only;
  // they land below the acknowledged point, and the caller trims such bytes.
  uint64_t to_rewritten(uint64_t orig) const;

  // Rewritten -> original, for acks and SACK right edges from the receiver. Never claims an
  // original byte whose replacement the receiver does not have:
  //  - outside replacements: the inverse of to_rewritten;
  //  - at the start of or inside a replacement [start, start + new_len): the START of the edited
  //    original range (pos);
  //  - at its end (the whole replacement received): the END of the original range
  //    (pos + old_len). A deletion's replacement is empty, so an ack at the deletion point
  //    acknowledges the deleted bytes (the gateway acknowledges what it removed).
  // Monotone non-decreasing. Offsets below the base delta clamp to 0.
  uint64_t to_original(uint64_t rewritten) const;

  // The same for a SACK LEFT edge, which must round the other way: a block that starts strictly
  // inside a replacement does not hold the original bytes before the replacement's end, so the
  // edge moves up to the END of the original range. At the very start of a non-empty
  // replacement it is pos. A block that collapses to empty is discarded by the sender.
  uint64_t to_original_left(uint64_t rewritten) const;

  // to_rewritten(orig) - orig.
  int64_t delta_at(uint64_t orig) const;

  // Forgets leading edits whose whole replacement lies at or before `acked_rewritten` (the
  // receiver has it), folding their delta into the base. Mappings of offsets at or after
  // frontier() are unchanged, except that an offset equal to a pruned insertion's pos now maps
  // past the inserted bytes (the receiver already has them).
  void prune(uint64_t acked_rewritten);

  // Original offset before which mappings are no longer exact: the end of the last pruned edit.
  uint64_t frontier() const { return frontier_; }
  // Edits kept (not yet acknowledged): the memory bound.
  size_t size() const { return edits_.size(); }
  bool empty() const { return edits_.empty(); }
  // Delta after every edit added so far: the shift of the stream's end.
  int64_t total_delta() const { return total_delta_; }

  // 32-bit forms. map_seq: original seq -> rewritten seq, `near` an original offset already seen.
  uint32_t map_seq(const SeqSpace& orig_space, uint32_t seq, uint64_t near) const;
  // map_ack: rewritten ack (or SACK right edge) -> original, `near` a REWRITTEN offset already
  // seen (e.g. to_rewritten of the sender's frontier). Correct across wraparound.
  uint32_t map_ack(const SeqSpace& space, uint32_t ack, uint64_t near) const;
  // map_sack_left: as map_ack with to_original_left.
  uint32_t map_sack_left(const SeqSpace& space, uint32_t left, uint64_t near) const;

 private:
  struct Entry {
    uint64_t pos = 0;          // original offset of the first replaced byte
    uint64_t old_len = 0;      // original bytes replaced
    uint64_t new_len = 0;      // bytes the receiver gets instead
    int64_t delta_before = 0;  // cumulative delta of every edit before this one
    uint64_t end() const { return pos + old_len; }
    uint64_t rw_start() const { return pos + static_cast<uint64_t>(delta_before); }
    uint64_t rw_end() const { return rw_start() + new_len; }
    int64_t delta() const { return static_cast<int64_t>(new_len) - static_cast<int64_t>(old_len); }
  };
  // Delta before the first kept edit (all pruned edits folded in).
  int64_t base_delta() const { return edits_.empty() ? total_delta_ : edits_.front().delta_before; }

  // A vector, not a deque: an empty libstdc++ deque allocates ~600 bytes, and most flows never
  // have an edit.
  std::vector<Entry> edits_;  // stream order; pos and rw_start non-decreasing
  int64_t total_delta_ = 0;
  uint64_t next_pos_ = 0;  // earliest pos the next edit may have
  uint64_t frontier_ = 0;
};

}  // namespace sg::tcp
