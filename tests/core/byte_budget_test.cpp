#include "core/byte_budget.hpp"

#include <catch2/catch.hpp>
#include <vector>

using sg::Timestamp;
using sg::core::ByteBudget;
using sg::tcp::BlockPool;
using namespace std::chrono_literals;

namespace {
const Timestamp t0 = Timestamp{} + 1000s;
constexpr size_t kBlock = BlockPool::kBlockSize;
}  // namespace

TEST_CASE("byte budget: held, pending and pooled bytes all count") {
  ByteBudget b(0);
  CHECK(b.used() == 0);
  b.add_held(1500);
  CHECK(b.used() == 1500);
  size_t counted = 0;  // what the budget has for one flow's unconsumed session bytes
  b.account_pending(counted, 300);
  CHECK(counted == 300);
  CHECK(b.used() == 1800);
  b.account_pending(counted, 100);  // the session consumed 200 of them
  CHECK(counted == 100);
  CHECK(b.used() == 1600);
  BlockPool::Block block = b.pool().take();
  CHECK(b.used() == 1600 + kBlock);
  b.pool().give(std::move(block));
  CHECK(b.used() == 1600 + kBlock);  // kept for reuse: still memory
  b.forget_pending(counted);
  CHECK(counted == 0);
  b.remove_held(1500);
  CHECK(b.used() == kBlock);
}

TEST_CASE("byte budget: without a limit everything fits, and nothing is released") {
  ByteBudget b(0);
  int releases = 0;
  CHECK(b.fits(size_t{1} << 40, t0, [&] { return ++releases, true; }));
  CHECK(releases == 0);
}

TEST_CASE("byte budget: pooled blocks go first, then the largest flow, then a 10 ms pause") {
  ByteBudget b(2 * kBlock);
  std::vector<BlockPool::Block> retained;  // one flow's retained bytes
  retained.push_back(b.pool().take());
  BlockPool::Block spare = b.pool().take();
  b.pool().give(std::move(spare));  // on the free list
  CHECK(b.used() == 2 * kBlock);

  SECTION("trimming the free list is enough: no flow is released") {
    int releases = 0;
    CHECK(b.fits(kBlock, t0, [&] { return ++releases, true; }));
    CHECK(releases == 0);
    CHECK(b.pool().blocks_free() == 0);
  }
  SECTION("then the flow retaining the most lets go") {
    int releases = 0;
    auto release = [&] {
      ++releases;
      for (auto& r : retained) b.pool().give(std::move(r));
      retained.clear();
      return true;
    };
    CHECK(b.fits(2 * kBlock, t0, release));
    CHECK(releases == 1);
    CHECK(b.used() == 0);
  }
  SECTION("no flow to release: refused, and no new search for 10 ms") {
    int searches = 0;
    auto none = [&] { return ++searches, false; };
    CHECK_FALSE(b.fits(2 * kBlock, t0, none));
    CHECK(searches == 1);
    CHECK_FALSE(b.fits(2 * kBlock, t0 + 9ms, none));
    CHECK(searches == 1);                   // refused without a search
    CHECK(b.fits(kBlock, t0 + 9ms, none));  // what fits still fits
    CHECK_FALSE(b.fits(2 * kBlock, t0 + 10ms, none));
    CHECK(searches == 2);
  }
  for (auto& r : retained) b.pool().give(std::move(r));
}
