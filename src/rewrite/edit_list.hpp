#pragma once
// The one edit primitive and the one place that applies it to segment bytes.
//
// An edit replaces the original stream bytes [pos, pos + replacement.size()) of one direction.
// Edits are recorded in stream order and kept until the receiver has acknowledged past them, so
// any retransmission - whatever its boundaries - gets exactly the bytes the first one got.
// (Same-length edits only here; length-changing edits add a sequence map on top.)
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>

namespace sg::rewrite {

struct Edit {
  uint64_t pos = 0;         // stream offset of the first replaced byte
  std::string replacement;  // as many bytes as it replaces
  uint64_t end() const { return pos + replacement.size(); }
};

class EditList {
 public:
  // Records that byte `pos` becomes `value`. Positions must not decrease from call to call;
  // adjacent bytes are merged into one edit.
  void replace_byte(uint64_t pos, char value);
  // Rewrites `payload`, the original bytes at stream offset `pos`. Returns true when any byte
  // changed.
  bool apply(uint64_t pos, std::span<uint8_t> payload) const;
  // Forgets edits that end at or before `acked` (the receiver has them).
  void prune(uint64_t acked);

  size_t size() const { return edits_.size(); }
  bool empty() const { return edits_.empty(); }
  const std::deque<Edit>& edits() const { return edits_; }

 private:
  std::deque<Edit> edits_;
};

}  // namespace sg::rewrite
