#include "tcp/hold_queue.hpp"

#include <catch2/catch.hpp>

using namespace sg;

namespace {

tcp::HeldPacket packet(uint32_t id, uint64_t start, uint64_t end, bool fed, Timestamp deadline) {
  return tcp::HeldPacket{id, start, end, deadline, fed, std::vector<uint8_t>(10, 0)};
}

}  // namespace

TEST_CASE("a hold queue counts its bytes and keeps to its limits") {
  tcp::HoldQueue q;
  CHECK(q.fits(10, 2, 20));
  q.push(packet(1, 0, 5, true, Timestamp{}));
  q.push(packet(2, 5, 9, true, Timestamp{}));
  CHECK(q.bytes() == 20);
  CHECK_FALSE(q.fits(10, 3, 20));  // bytes
  CHECK_FALSE(q.fits(0, 2, 100));  // packets
}

TEST_CASE("held packets leave in the order they came once their bytes are decided") {
  tcp::HoldQueue q;
  q.push(packet(1, 0, 5, true, Timestamp{}));
  q.push(packet(2, 20, 25, false, Timestamp{}));  // beyond a hole: not fed
  q.push(packet(3, 5, 9, true, Timestamp{}));
  std::vector<uint32_t> left;
  const size_t freed = q.take_ready([] { return uint64_t{9}; },
                                    [&](tcp::HeldPacket& h) { left.push_back(h.packet_id); });
  CHECK(left == std::vector<uint32_t>{1, 3});  // 2 waits behind its hole, 3 is not held up
  CHECK(freed == 20);
  CHECK(q.size() == 1);
}

TEST_CASE("packets beyond a hole are fed as it closes, whatever order they came in") {
  tcp::HoldQueue q;
  q.push(packet(1, 10, 20, false, Timestamp{}));
  q.push(packet(2, 5, 10, false, Timestamp{}));
  uint64_t frontier = 5;
  std::vector<uint32_t> fed;
  q.feed_in_order([&] { return frontier; },
                  [&](tcp::HeldPacket& h) {
                    fed.push_back(h.packet_id);
                    frontier = h.end;
                  });
  CHECK(fed == std::vector<uint32_t>{2, 1});
  CHECK(frontier == 20);
}

TEST_CASE("unfed packets past their deadline are dropped; fed ones stay") {
  tcp::HoldQueue q;
  const Timestamp t0{};
  q.push(packet(1, 10, 20, false, t0 + seconds(1)));
  q.push(packet(2, 0, 5, true, t0 + seconds(1)));
  q.push(packet(3, 30, 40, false, t0 + seconds(3)));
  std::vector<uint32_t> dropped;
  CHECK(q.drop_unfed(t0 + seconds(2),
                     [&](const tcp::HeldPacket& h) { dropped.push_back(h.packet_id); }) == 10);
  CHECK(dropped == std::vector<uint32_t>{1});
  CHECK(q.fed_due(t0 + seconds(1)));
  CHECK(q.earliest_deadline() == t0 + seconds(1));
  CHECK(q.clear([](const tcp::HeldPacket&) {}) == 20);
  CHECK(q.empty());
}
