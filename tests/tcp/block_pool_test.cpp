#include "tcp/block_pool.hpp"

#include <catch2/catch.hpp>
#include <vector>

using sg::tcp::BlockPool;

TEST_CASE("the pool reuses given blocks and keeps at most its bound") {
  BlockPool pool(2);
  std::vector<BlockPool::Block> taken;
  for (int i = 0; i < 5; ++i) taken.push_back(pool.take());
  CHECK(pool.allocations() == 5);
  CHECK(pool.blocks_in_use() == 5);
  CHECK(pool.bytes_held() == 5 * BlockPool::kBlockSize);
  for (auto& b : taken) pool.give(std::move(b));
  CHECK(pool.blocks_in_use() == 0);
  CHECK(pool.blocks_free() == 2);  // three freed for good
  CHECK(pool.bytes_held() == 2 * BlockPool::kBlockSize);
  BlockPool::Block again = pool.take();
  CHECK(pool.allocations() == 5);  // from the free list
  CHECK(again.get() != nullptr);
  pool.give(std::move(again));
  pool.give(nullptr);  // nothing: not counted
  CHECK(pool.blocks_in_use() == 0);
  pool.trim();
  CHECK(pool.blocks_free() == 0);
  CHECK(pool.bytes_held() == 0);
}
