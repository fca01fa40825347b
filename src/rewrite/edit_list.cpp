#include "rewrite/edit_list.hpp"

#include <algorithm>

namespace sg::rewrite {

void EditList::replace_byte(uint64_t pos, char value) {
  if (!edits_.empty() && edits_.back().end() == pos) {
    edits_.back().replacement.push_back(value);
    return;
  }
  edits_.push_back(Edit{pos, std::string(1, value)});
}

bool EditList::apply(uint64_t pos, std::span<uint8_t> payload) const {
  const uint64_t end = pos + payload.size();
  // The first edit that ends after `pos`.
  auto it = std::partition_point(edits_.begin(), edits_.end(),
                                 [pos](const Edit& e) { return e.end() <= pos; });
  bool changed = false;
  for (; it != edits_.end() && it->pos < end; ++it) {
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

void EditList::prune(uint64_t acked) {
  while (!edits_.empty() && edits_.front().end() <= acked) edits_.pop_front();
}

}  // namespace sg::rewrite
