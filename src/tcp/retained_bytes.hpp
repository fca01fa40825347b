#pragma once
// The bytes of one direction kept from `begin()` to `end()`: what was inspected and not yet
// acknowledged, so that a retransmission can be compared with it. Stored in fixed-size blocks
// from the worker's BlockPool, so that appending costs a copy, releasing from the front moves
// nothing, and a block let go at the front is reused at the end without a page fault.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "tcp/block_pool.hpp"

namespace sg::tcp {

class RetainedBytes {
 public:
  // Without a pool, blocks are allocated and freed one by one (tests, tools).
  // A cap above 4 GiB is taken as 4 GiB.
  explicit RetainedBytes(size_t cap, BlockPool* pool = nullptr)
      : pool_(pool), cap_(static_cast<uint32_t>(std::min<size_t>(cap, UINT32_MAX))) {}
  ~RetainedBytes() { reset(end_); }
  RetainedBytes(const RetainedBytes&) = delete;
  RetainedBytes& operator=(const RetainedBytes&) = delete;

  // Blocks come from `pool` from now on. Only while nothing is kept (the blocks already taken
  // would go back to the wrong pool).
  void set_pool(BlockPool* pool) {
    if (chunks_.empty()) pool_ = pool;
  }

  uint64_t begin() const { return end_ - size_; }
  uint64_t end() const { return end_; }
  size_t size() const { return size_; }
  // Memory taken: whole blocks, however little of them is live.
  size_t bytes_held() const { return chunks_.size() * BlockPool::kBlockSize; }

  // Appends the bytes at end(); beyond the cap the oldest bytes are let go (begin() moves).
  void append(std::string_view bytes) {
    while (!bytes.empty()) {
      if (chunks_.empty() || chunks_.back().used == BlockPool::kBlockSize)
        chunks_.push_back(Chunk{take(), 0});
      Chunk& c = chunks_.back();
      const size_t n = std::min(bytes.size(), BlockPool::kBlockSize - c.used);
      std::memcpy(c.data.get() + c.used, bytes.data(), n);
      c.used += n;
      size_ += n;
      end_ += n;
      bytes.remove_prefix(n);
    }
    if (size_ > cap_) release_before(end_ - cap_);
  }
  // Lets go of everything before offset `off`.
  void release_before(uint64_t off) {
    size_t gone = 0;  // whole chunks let go, erased from the front at once
    while (gone < chunks_.size() && begin() < off) {
      const size_t live = chunks_[gone].used - skip_;
      const uint64_t drop = std::min<uint64_t>(off - begin(), live);
      if (drop == live) {
        give(chunks_[gone]);
        ++gone;
        skip_ = 0;
      } else {
        skip_ += static_cast<uint32_t>(drop);
      }
      size_ -= static_cast<size_t>(drop);
    }
    chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(gone));
    if (chunks_.empty()) {
      skip_ = 0;
      free_list();
    }
  }
  // Forgets everything; the next byte appended is at `off`.
  void reset(uint64_t off) {
    for (Chunk& c : chunks_) give(c);
    chunks_.clear();
    free_list();
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
      std::string_view c(chunks_[i].data.get(), chunks_[i].used);
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
  struct Chunk {
    BlockPool::Block data;
    size_t used = 0;  // bytes written into the block
  };
  BlockPool::Block take() {
    return pool_ ? pool_->take() : BlockPool::Block(new char[BlockPool::kBlockSize]);
  }
  // An idle connection's directions keep nothing: the emptied list gives its storage back
  // rather than hold it for each (16 bytes and the allocator's overhead, per direction).
  void free_list() {
    if (chunks_.capacity() > 0) std::vector<Chunk>().swap(chunks_);
  }
  void give(Chunk& c) {
    if (pool_) pool_->give(std::move(c.data));
    c.data.reset();
  }

  // Every inspected direction of every connection carries one: 56 bytes, no padding.
  std::vector<Chunk> chunks_;  // not a deque: an empty one allocates ~600 bytes
  size_t size_ = 0;
  uint64_t end_ = 0;
  BlockPool* pool_;
  uint32_t cap_;
  uint32_t skip_ = 0;  // bytes of the front chunk already let go (less than kBlockSize)
};

}  // namespace sg::tcp
