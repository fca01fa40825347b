#include "rewrite/edit_list.hpp"

#include <algorithm>

namespace sg::rewrite {
namespace {

// How many bytes of `e`'s replacement lie before original offset `x` in the rewritten stream:
// the same rule as SeqMap::to_rewritten (an insertion at x is not before x; inside a replaced
// range, byte k of the original maps to byte min(k, size) of the replacement).
uint64_t replacement_before(const Edit& e, uint64_t x) {
  if (x <= e.pos) return 0;
  if (x >= e.end()) return e.replacement.size();
  return std::min<uint64_t>(x - e.pos, e.replacement.size());
}

}  // namespace

std::vector<Edit>::const_iterator EditList::first_touching(uint64_t pos) const {
  // Edits wholly before `pos`: those ending before it, and non-empty ones ending at it. An
  // insertion at `pos` touches it.
  return std::partition_point(edits_.begin(), edits_.end(), [pos](const Edit& e) {
    return e.end() < pos || (e.end() == pos && e.old_len > 0);
  });
}

bool EditList::replace_byte(uint64_t pos, char value) {
  if (pos < acked_original_) return false;
  // After every edit starting before `pos` and after insertions at `pos` (they come first).
  auto at = std::partition_point(edits_.begin(), edits_.end(), [pos](const Edit& e) {
    return e.pos < pos || (e.pos == pos && e.old_len == 0);
  });
  if (at != edits_.end() && at->pos == pos) return false;  // inside another edit
  if (at != edits_.begin()) {
    Edit& prev = *std::prev(at);
    if (prev.end() > pos) return false;
    if (prev.end() == pos && prev.old_len > 0 && prev.same_length()) {
      prev.old_len += 1;
      prev.replacement.push_back(value);
      return true;
    }
  }
  // The byte after `pos` maps one past this byte's rewritten offset, whatever precedes it.
  const uint64_t rw = map_.to_rewritten(pos + 1) - 1;
  edits_.insert(at, Edit{pos, 1, std::string(1, value), rw});
  return true;
}

bool EditList::append_resizing(uint64_t pos, uint64_t old_len, std::string_view replacement) {
  if (pos < resize_floor_ || pos < acked_original_) return false;
  if (!edits_.empty() && pos < edits_.back().end()) return false;
  const uint64_t rw = pos + static_cast<uint64_t>(map_.total_delta());
  if (!map_.add(pos, old_len, replacement.size())) return false;
  edits_.push_back(Edit{pos, old_len, std::string(replacement), rw});
  resize_floor_ = pos + old_len;
  ever_resized_ = true;
  return true;
}

bool EditList::remove(uint64_t pos, uint64_t len) {
  if (len == 0) return true;
  return append_resizing(pos, len, {});
}

bool EditList::insert(uint64_t pos, std::string_view bytes) {
  if (bytes.empty()) return true;
  return append_resizing(pos, 0, bytes);
}

bool EditList::apply_in_place(uint64_t pos, std::span<uint8_t> payload) const {
  const uint64_t end = pos + payload.size();
  bool changed = false;
  for (auto it = first_touching(pos); it != edits_.end() && it->pos < end; ++it) {
    if (!it->same_length()) continue;  // the caller renders such packets instead
    const uint64_t from = std::max(pos, it->pos);
    const uint64_t to = std::min(end, it->end());
    for (uint64_t p = from; p < to; ++p) {
      const auto v = static_cast<uint8_t>(it->replacement[p - it->pos]);
      uint8_t& b = payload[p - pos];
      if (b != v) {
        b = v;
        changed = true;
      }
    }
  }
  return changed;
}

void EditList::render(uint64_t pos, std::span<const uint8_t> original,
                      std::vector<uint8_t>& out) const {
  const uint64_t end = pos + original.size();
  uint64_t p = pos;  // next original byte not yet accounted for
  for (auto it = first_touching(pos); it != edits_.end() && it->pos < end; ++it) {
    const Edit& e = *it;
    if (e.pos > p) {
      out.insert(out.end(), original.begin() + static_cast<ptrdiff_t>(p - pos),
                 original.begin() + static_cast<ptrdiff_t>(e.pos - pos));
      p = e.pos;
    }
    const uint64_t lo = replacement_before(e, pos);
    const uint64_t hi = replacement_before(e, end);
    if (hi > lo) out.insert(out.end(), e.replacement.begin() + lo, e.replacement.begin() + hi);
    p = std::max(p, std::min(e.end(), end));
  }
  if (p < end)
    out.insert(out.end(), original.begin() + static_cast<ptrdiff_t>(p - pos), original.end());
}

uint64_t EditList::to_rewritten_after(uint64_t orig) const {
  return map_.to_rewritten(orig) + inserted_at(orig).size();
}

std::string EditList::inserted_at(uint64_t orig) const {
  std::string out;
  for (auto it = first_touching(orig); it != edits_.end() && it->pos == orig && it->old_len == 0;
       ++it)
    out += it->replacement;
  return out;
}

uint64_t EditList::prune(uint64_t acked_rewritten) {
  size_t n = 0;
  while (n < edits_.size() && edits_[n].rw_end() <= acked_rewritten) ++n;
  edits_.erase(edits_.begin(), edits_.begin() + static_cast<std::ptrdiff_t>(n));
  map_.prune(acked_rewritten);
  acked_original_ = std::max(acked_original_, map_.to_original(acked_rewritten));
  return acked_original_;
}

}  // namespace sg::rewrite
