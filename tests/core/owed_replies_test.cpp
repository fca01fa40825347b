#include "core/owed_replies.hpp"

#include <catch2/catch.hpp>

using sg::Timestamp;
using sg::core::OwedReplies;
using sg::core::OwedReply;
using namespace std::chrono_literals;

namespace {
const Timestamp t0 = Timestamp{} + 1000s;
}  // namespace

TEST_CASE("owed replies: a new answer at the same server offset replaces the old one") {
  OwedReplies o;
  CHECK(o.empty());
  o.add(100, 100, "550 5.7.1 no\r\n");
  o.add(100, 114, "550 5.7.1 no\r\n");  // the answer to the next removed command
  REQUIRE(o.size() == 1);
  CHECK(o.all()[0].rw_start == 114);
  o.add(200, 228, "250 ok\r\n");
  CHECK(o.size() == 2);
}

TEST_CASE("owed replies: gone once acknowledged in full or carried by a server segment") {
  OwedReplies o;
  o.add(100, 100, "550 5.7.1 no\r\n");  // rewritten [100, 114)
  o.add(300, 314, "250 ok\r\n");        // rewritten [314, 322)
  o.acked(113);                         // one byte short
  CHECK(o.size() == 2);
  o.acked(114);
  REQUIRE(o.size() == 1);
  CHECK(o.all()[0].pos == 300);
  o.carried(200, 100);  // server bytes [200, 300): the insertion point 300 is not inside
  CHECK(o.size() == 1);
  o.carried(250, 51);  // [250, 301)
  CHECK(o.empty());
}

TEST_CASE("owed replies: retransmission backs off from 250 ms to 8 s and gives up") {
  OwedReplies o;
  OwedReply& r = o.add(0, 0, "250 ok\r\n");
  CHECK(o.earliest_deadline() == Timestamp{});  // due at once: never sent
  Timestamp now = t0;
  r.sent(now);
  CHECK(r.deadline == t0 + 250ms);
  CHECK(o.earliest_deadline() == t0 + 250ms);
  std::chrono::milliseconds expect = 500ms;
  for (unsigned i = 1; i < OwedReply::kMaxTries; ++i) {
    CHECK_FALSE(r.given_up());
    now = r.deadline;
    r.sent(now);
    CHECK(r.deadline == now + std::min<std::chrono::milliseconds>(expect, 8000ms));
    expect *= 2;
  }
  CHECK(r.given_up());
  o.clear();
  CHECK(o.earliest_deadline() == Timestamp::max());
}
