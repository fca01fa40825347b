#include "tcp/block_pool.hpp"

namespace sg::tcp {

BlockPool::Block BlockPool::take() {
  ++in_use_;
  if (!free_.empty()) {
    Block b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  ++allocations_;
  // Not value-initialised: every byte is written before it is read.
  return Block(new char[kBlockSize]);
}

void BlockPool::give(Block b) {
  if (!b) return;
  --in_use_;
  if (free_.size() < max_free_) {
    if (free_.capacity() == 0) free_.reserve(max_free_);
    free_.push_back(std::move(b));
  }
}

}  // namespace sg::tcp
