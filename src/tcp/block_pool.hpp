#pragma once
// The fixed-size blocks retained bytes are stored in, handed out and taken back by one worker.
// A bulk transfer lets go of blocks at the front (acknowledged) as fast as it needs new ones at
// the end; without a free list each block is a fresh allocation whose pages fault in again
// (a profile of bulk DATA: ~14% of the CPU in page faults). The free list is bounded, and the
// blocks on it count as used memory (bytes_held()), so pooling never hides memory from the
// worker's byte budget.
//
// One pool per worker (per Pipeline): no locks. A pool must outlive every block taken from it.
#include <cstddef>
#include <memory>
#include <vector>

namespace sg::tcp {

class BlockPool {
 public:
  static constexpr size_t kBlockSize = 16 * 1024;
  using Block = std::unique_ptr<char[]>;

  // At most `max_free` blocks are kept for reuse; more are freed.
  explicit BlockPool(size_t max_free = kDefaultMaxFree) : max_free_(max_free) {}
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // A block of kBlockSize bytes (contents unspecified). Allocates when the free list is empty.
  Block take();
  // Returns a block taken from this pool.
  void give(Block b);
  // Frees the blocks kept for reuse (the worker's byte budget is full).
  void trim() { std::vector<Block>().swap(free_); }

  size_t blocks_in_use() const { return in_use_; }
  size_t blocks_free() const { return free_.size(); }
  // Memory the pool answers for: blocks in use and blocks kept for reuse.
  size_t bytes_held() const { return (in_use_ + free_.size()) * kBlockSize; }
  // Blocks that had to be allocated (the free list was empty): for tests and benchmarks.
  size_t allocations() const { return allocations_; }

  // 64 blocks (1 MiB): a few round trips of a bulk transfer's blocks at 10 Gbit/s.
  static constexpr size_t kDefaultMaxFree = 64;

 private:
  std::vector<Block> free_;
  size_t max_free_;
  size_t in_use_ = 0;
  size_t allocations_ = 0;
};

}  // namespace sg::tcp
