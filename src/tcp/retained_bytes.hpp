#pragma once
// The bytes of one direction kept from `begin()` to `end()`: what was inspected and not yet
// acknowledged, so that a retransmission can be compared with it. Stored in blocks, so that
// appending costs a copy and releasing from the front moves nothing.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sg::tcp {

class RetainedBytes {
 public:
  explicit RetainedBytes(size_t cap) : cap_(cap) {}

  uint64_t begin() const { return end_ - size_; }
  uint64_t end() const { return end_; }
  size_t size() const { return size_; }

  // Appends the bytes at end(); beyond the cap the oldest bytes are let go (begin() moves).
  void append(std::string_view bytes) {
    if (bytes.empty()) return;
    // Filled into blocks: one allocation per kBlock bytes, not one per segment.
    if (chunks_.empty() || chunks_.back().size() + bytes.size() > kBlock) {
      chunks_.emplace_back();
      chunks_.back().reserve(std::max(kBlock, bytes.size()));
    }
    chunks_.back().append(bytes);
    size_ += bytes.size();
    end_ += bytes.size();
    while (size_ > cap_) release_before(end_ - cap_);
  }
  // Lets go of everything before offset `off`.
  void release_before(uint64_t off) {
    size_t gone = 0;  // whole chunks let go, erased from the front at once
    while (gone < chunks_.size() && begin() < off) {
      const size_t live = chunks_[gone].size() - skip_;
      const uint64_t drop = std::min<uint64_t>(off - begin(), live);
      if (drop == live) {
        ++gone;
        skip_ = 0;
      } else {
        skip_ += static_cast<size_t>(drop);
      }
      size_ -= static_cast<size_t>(drop);
    }
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(gone));
  }
  // Forgets everything; the next byte appended is at `off`.
  void reset(uint64_t off) {
    chunks_.clear();
    skip_ = 0;
    size_ = 0;
    end_ = off;
  }
  // Whether `bytes`, found at offset `pos`, equal the kept bytes there. [pos, pos + size) must lie
  // within [begin(), end()).
  bool equals(uint64_t pos, std::string_view bytes) const {
    uint64_t at = begin();
    size_t done = 0;
    for (size_t i = 0; i < chunks_.size() && done < bytes.size(); ++i) {
      std::string_view c(chunks_[i]);
      if (i == 0) c.remove_prefix(skip_);
      const uint64_t c_end = at + c.size();
      if (c_end > pos + done) {
        const size_t from = static_cast<size_t>(pos + done - at);
        const size_t n = std::min(c.size() - from, bytes.size() - done);
        if (c.substr(from, n) != bytes.substr(done, n)) return false;
        done += n;
      }
      at = c_end;
    }
    return done == bytes.size();
  }

 private:
  static constexpr size_t kBlock = 16 * 1024;
  std::vector<std::string> chunks_;  // not a deque: an empty one allocates ~600 bytes
  size_t skip_ = 0;                  // bytes of the front chunk already let go
  size_t size_ = 0;
  uint64_t end_ = 0;
  size_t cap_;
};

}  // namespace sg::tcp
