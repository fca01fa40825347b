#include "tcp/seq_map.hpp"

#include <algorithm>

namespace sg::tcp {

namespace {

// x + delta, clamped at 0: only offsets below the prune frontier can go negative.
uint64_t shift(uint64_t x, int64_t delta) {
  if (delta < 0 && x < static_cast<uint64_t>(-delta)) return 0;
  return x + static_cast<uint64_t>(delta);
}

}  // namespace

bool SeqMap::add(uint64_t pos, uint64_t old_len, uint64_t new_len) {
  if (pos < next_pos_ || old_len > kMaxEditLen || new_len > kMaxEditLen) return false;
  if (pos + old_len < pos) return false;
  // Same length: identity is exact, and nothing later shifts. The order is still enforced so a
  // caller's bookkeeping error does not pass silently.
  next_pos_ = pos + old_len;
  if (old_len == new_len) return true;
  edits_.push_back(Entry{pos, old_len, new_len, total_delta_});
  total_delta_ += edits_.back().delta();
  return true;
}

uint64_t SeqMap::to_rewritten(uint64_t orig) const {
  // The last edit starting strictly before `orig`: an insertion at `orig` itself is not yet
  // applied, so `orig` lands at the start of the inserted bytes.
  auto it = std::lower_bound(edits_.begin(), edits_.end(), orig,
                             [](const Entry& e, uint64_t x) { return e.pos < x; });
  if (it == edits_.begin()) return shift(orig, base_delta());
  const Entry& e = *std::prev(it);
  if (orig >= e.end()) return shift(orig, e.delta_before + e.delta());
  return e.rw_start() + std::min(orig - e.pos, e.new_len);
}

uint64_t SeqMap::to_original(uint64_t rewritten) const {
  // The last edit whose replacement starts at or before `rewritten`. With edits back to back the
  // later one wins; both give the same answer at their shared boundary.
  auto it = std::upper_bound(edits_.begin(), edits_.end(), rewritten,
                             [](uint64_t r, const Entry& e) { return r < e.rw_start(); });
  if (it == edits_.begin()) return shift(rewritten, -base_delta());
  const Entry& e = *std::prev(it);
  if (rewritten < e.rw_end()) return e.pos;  // replacement not wholly received
  return e.end() + (rewritten - e.rw_end());
}

uint64_t SeqMap::to_original_left(uint64_t rewritten) const {
  auto it = std::upper_bound(edits_.begin(), edits_.end(), rewritten,
                             [](uint64_t r, const Entry& e) { return r < e.rw_start(); });
  if (it == edits_.begin()) return shift(rewritten, -base_delta());
  const Entry& e = *std::prev(it);
  if (rewritten == e.rw_start() && e.new_len > 0) return e.pos;  // the block holds it all
  if (rewritten < e.rw_end()) return e.end();                    // only a tail: round up
  return e.end() + (rewritten - e.rw_end());
}

int64_t SeqMap::delta_at(uint64_t orig) const {
  return static_cast<int64_t>(to_rewritten(orig) - orig);
}

void SeqMap::prune(uint64_t acked_rewritten) {
  size_t n = 0;
  while (n < edits_.size() && edits_[n].rw_end() <= acked_rewritten) frontier_ = edits_[n++].end();
  edits_.erase(edits_.begin(), edits_.begin() + static_cast<std::ptrdiff_t>(n));
}

uint32_t SeqMap::map_seq(const SeqSpace& orig_space, uint32_t seq, uint64_t near) const {
  return orig_space.seq(to_rewritten(orig_space.offset(seq, near)));
}

uint32_t SeqMap::map_ack(const SeqSpace& space, uint32_t ack, uint64_t near) const {
  return space.seq(to_original(space.offset(ack, near)));
}

uint32_t SeqMap::map_sack_left(const SeqSpace& space, uint32_t left, uint64_t near) const {
  return space.seq(to_original_left(space.offset(left, near)));
}

}  // namespace sg::tcp
