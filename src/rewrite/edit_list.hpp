#pragma once
// The one edit primitive and the one mangler: what a direction's receiver gets instead of what
// its sender sent.
//
// An edit replaces the original stream bytes [pos, pos + old_len) with `replacement` (a mask keeps
// the length, a deletion has no replacement, an insertion replaces nothing). Edits are kept in
// stream order until the receiver has acknowledged past them, so any retransmission - however it
// is cut or coalesced - gets exactly the bytes the first transmission got: the output for the
// original range [a, b) is the rewritten stream's range [to_rewritten(a), to_rewritten(b)), a
// fixed function of the edits (an insertion at `pos` travels with original byte `pos`).
//
// Length-changing edits are mirrored in a tcp::SeqMap, the one module that maps offsets.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tcp/seq_map.hpp"

namespace sg::rewrite {

struct Edit {
  uint64_t pos = 0;         // stream offset of the first replaced byte (or of the insertion)
  uint64_t old_len = 0;     // original bytes replaced
  std::string replacement;  // what the receiver gets instead
  uint64_t rw_start = 0;    // where the replacement starts in the rewritten stream
  uint64_t end() const { return pos + old_len; }
  uint64_t rw_end() const { return rw_start + replacement.size(); }
  bool same_length() const { return old_len == replacement.size(); }
};

class EditList {
 public:
  // Original byte `pos` becomes `value`. May go anywhere not yet edited (a byte decided late,
  // like the separator of an EHLO line whose successors were stripped); adjacent byte edits are
  // merged. False, changing nothing, when `pos` falls inside an existing edit.
  bool replace_byte(uint64_t pos, char value);
  // Original bytes [pos, pos + len) are removed. Must not start before the end of the last
  // length-changing edit; adjacent deletions stay separate edits (mirrored one to one in the map).
  bool remove(uint64_t pos, uint64_t len);
  // `bytes` are inserted before original byte `pos`. Same ordering rule; several insertions at one
  // pos keep their call order.
  bool insert(uint64_t pos, std::string_view bytes);

  // The rewritten bytes for the original bytes `original` found at stream offset `pos`, appended
  // to `out` (which the caller clears). Their count is to_rewritten(end) - to_rewritten(pos).
  // `pos` must not lie below the last prune point (see acked_original()): trim first.
  void render(uint64_t pos, std::span<const uint8_t> original, std::vector<uint8_t>& out) const;
  // Rewrites `payload` in place with the same-length edits touching it, returning false when
  // nothing changed. Only for lists that never changed a length (see ever_resized()).
  bool apply_in_place(uint64_t pos, std::span<uint8_t> payload) const;

  uint64_t to_rewritten(uint64_t orig) const { return map_.to_rewritten(orig); }
  // As to_rewritten, but past any bytes inserted at `orig`: where a segment carrying no data
  // (an ACK, a FIN, a RST) with sequence number `orig` belongs, so that the receiver finds it
  // at or after its next expected byte once it has the inserted bytes.
  uint64_t to_rewritten_after(uint64_t orig) const;
  // The bytes inserted at `orig` (still unacknowledged), in order.
  std::string inserted_at(uint64_t orig) const;
  uint64_t to_original(uint64_t rewritten) const { return map_.to_original(rewritten); }
  const tcp::SeqMap& map() const { return map_; }
  // True once any length-changing edit was recorded: every later packet needs mapping.
  bool ever_resized() const { return ever_resized_; }

  // The receiver acknowledged every rewritten byte before `acked_rewritten`: forgets the edits
  // it has. Returns the original offset below which bytes need not (and can no longer exactly)
  // be rendered: a retransmission is trimmed to start there.
  uint64_t prune(uint64_t acked_rewritten);
  uint64_t acked_original() const { return acked_original_; }

  size_t size() const { return edits_.size(); }
  bool empty() const { return edits_.empty(); }
  const std::vector<Edit>& edits() const { return edits_; }

 private:
  // The first edit that may touch original bytes at or after `pos`.
  std::vector<Edit>::const_iterator first_touching(uint64_t pos) const;
  bool append_resizing(uint64_t pos, uint64_t old_len, std::string_view replacement);

  std::vector<Edit> edits_;  // stream order: pos and rw_start non-decreasing, no overlap
  tcp::SeqMap map_;
  uint64_t resize_floor_ = 0;  // a length-changing edit may not start before this
  uint64_t acked_original_ = 0;
  bool ever_resized_ = false;
};

}  // namespace sg::rewrite
