#include "tcp/retained_bytes.hpp"

#include <catch2/catch.hpp>
#include <random>
#include <string>

using sg::tcp::RetainedBytes;

TEST_CASE("retained bytes compare anywhere and after releases") {
  RetainedBytes r(1000);
  const std::string stream = "EHLO c.example.org\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b>\r\n";
  // Appended in uneven chunks, as segments come.
  r.append(stream.substr(0, 7));
  r.append(stream.substr(7, 20));
  r.append(stream.substr(27));
  CHECK(r.begin() == 0);
  CHECK(r.end() == stream.size());
  for (size_t a = 0; a < stream.size(); ++a)
    for (size_t b = a; b <= stream.size(); ++b) {
      INFO(a << ".." << b);
      REQUIRE(r.equals(a, std::string_view(stream).substr(a, b - a)));
    }
  std::string other = stream;
  other[30] = 'X';
  CHECK_FALSE(r.equals(25, std::string_view(other).substr(25, 10)));
  CHECK(r.equals(31, std::string_view(other).substr(31, 10)));
  r.release_before(10);  // inside the second chunk
  CHECK(r.begin() == 10);
  CHECK(r.size() == stream.size() - 10);
  CHECK(r.equals(10, std::string_view(stream).substr(10)));
  r.release_before(27);  // exactly a chunk boundary
  CHECK(r.begin() == 27);
  CHECK(r.equals(27, std::string_view(stream).substr(27)));
}

TEST_CASE("comparisons cross the blocks the bytes are stored in") {
  RetainedBytes r(1 << 20);
  std::string all;
  for (int i = 0; i < 5; ++i) {
    std::string piece(10000, static_cast<char>('a' + i));  // 16 KiB blocks: a new one each time
    piece[i * 7] = '#';
    all += piece;
    r.append(piece);
  }
  for (uint64_t at : {0u, 9990u, 16380u, 19995u, 32000u, 49000u}) {
    INFO("at " << at);
    CHECK(r.equals(at, std::string_view(all).substr(at, 50)));
    std::string wrong = all.substr(at, 50);
    wrong[25] ^= 1;
    CHECK_FALSE(r.equals(at, wrong));
  }
  r.release_before(15000);
  CHECK(r.begin() == 15000);
  CHECK(r.equals(15000, std::string_view(all).substr(15000)));
}

TEST_CASE("retained bytes stay within their cap and reset to a new start") {
  RetainedBytes r(16);
  std::mt19937 rng(5);
  std::string all;
  for (int i = 0; i < 200; ++i) {
    std::string piece(rng() % 7 + 1, static_cast<char>('a' + i % 26));
    all += piece;
    r.append(piece);
    REQUIRE(r.size() <= 16);
    REQUIRE(r.end() == all.size());
    REQUIRE(r.equals(r.begin(), std::string_view(all).substr(r.begin())));
  }
  r.reset(5000);
  CHECK(r.begin() == 5000);
  CHECK(r.size() == 0);
  r.append("xyz");
  CHECK(r.equals(5001, "yz"));
}

TEST_CASE("retained bytes take their blocks from the pool and give them back") {
  sg::tcp::BlockPool pool(4);
  constexpr size_t kBlock = sg::tcp::BlockPool::kBlockSize;
  {
    RetainedBytes r(1 << 20, &pool);
    std::string all;
    for (int i = 0; i < 40; ++i) {
      std::string piece(1448, static_cast<char>('a' + i % 26));
      all += piece;
      r.append(piece);
    }
    CHECK(pool.blocks_in_use() == (all.size() + kBlock - 1) / kBlock);
    CHECK(r.bytes_held() == pool.blocks_in_use() * kBlock);
    CHECK(r.equals(0, all));
    // Acknowledged up to the middle of the third block: two blocks go back, to the free list.
    r.release_before(2 * kBlock + 10);
    CHECK(pool.blocks_in_use() == (all.size() + kBlock - 1) / kBlock - 2);
    CHECK(pool.blocks_free() == 2);
    CHECK(r.equals(2 * kBlock + 10, std::string_view(all).substr(2 * kBlock + 10)));
    // A steady transfer reuses them: no allocation while the free list has blocks.
    const size_t allocations = pool.allocations();
    r.append(std::string(kBlock, 'z'));
    CHECK(pool.allocations() == allocations);
  }
  // Destroyed: every block back, the free list bounded (4), the rest freed.
  CHECK(pool.blocks_in_use() == 0);
  CHECK(pool.blocks_free() == 4);
  CHECK(pool.bytes_held() == 4 * kBlock);
  pool.trim();
  CHECK(pool.bytes_held() == 0);
}

TEST_CASE("a segment larger than a block is split across blocks, at every split point") {
  sg::tcp::BlockPool pool;
  constexpr size_t kBlock = sg::tcp::BlockPool::kBlockSize;
  std::string all(3 * kBlock + 100, '.');
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<char>('a' + (i * 7) % 26);
  for (size_t cut : {size_t{1}, kBlock - 1, kBlock, kBlock + 1, 2 * kBlock + 50}) {
    INFO("cut " << cut);
    RetainedBytes r(1 << 20, &pool);
    r.append(std::string_view(all).substr(0, cut));
    r.append(std::string_view(all).substr(cut));
    CHECK(r.size() == all.size());
    CHECK(r.bytes_held() == 4 * kBlock);
    CHECK(r.equals(0, all));
    std::string wrong = all;
    wrong[cut] ^= 1;
    CHECK_FALSE(r.equals(0, wrong));
  }
  CHECK(pool.blocks_in_use() == 0);
}
