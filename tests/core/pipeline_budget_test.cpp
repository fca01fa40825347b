// The worker's byte budget (retained bytes + held packets): over it, a new data segment is
// dropped before it is inspected (the sender retransmits), or the flow retaining the most lets
// go of its retained bytes so that the others can go on.
#include <catch2/catch.hpp>

#include "core/pipeline_session.hpp"
#include "tcp/block_pool.hpp"

using namespace sg;
using core::Counter;
using core::VerdictKind;
using test::PipelineSession;

namespace {

constexpr size_t kBlock = tcp::BlockPool::kBlockSize;

core::PipelineConfig tiny_budget(size_t bytes) {
  core::PipelineConfig c{policy::single_policy(policy::builtin_profile("modern"))};
  c.memory_budget = bytes;
  // The behaviour below the exception: the segment is dropped, the sender retransmits it.
  c.exceptions.set(policy::Exception::kMemoryBudget, policy::ExceptionAction::kDropPacket);
  return c;
}

// Sends body segments without any acknowledgement until one is dropped (bounded).
size_t fill_until_dropped(PipelineSession& s, char fill, size_t max_segments = 64) {
  for (size_t i = 0; i < max_segments; ++i) {
    auto o = s.client(test::body_segment(1400, fill));
    if (o.verdict.kind == VerdictKind::kDrop) return i;
  }
  return max_segments;
}

}  // namespace

TEST_CASE("a flow withholding acks meets the budget: its new data is dropped, nothing lost") {
  core::Pipeline p(tiny_budget(4 * kBlock));
  PipelineSession a(p, 41000);
  a.open_data();
  const size_t accepted = fill_until_dropped(a, 'a');
  CHECK(accepted > 10);  // ~ 4 blocks of 1400-byte segments
  CHECK(accepted < 64);
  CHECK(p.counters().get(Counter::budget_drops) == 1);
  CHECK(p.budget_used() <= 4 * kBlock);
  // Logged once for the flow.
  REQUIRE(a.out.decisions.size() == 1);
  CHECK(a.out.decisions[0].event == policy::Event::kExceptionMemoryBudget);
  CHECK(a.out.decisions[0].action == "drop-packet");
  // Nothing was inspected of the dropped segment: when the receiver's acknowledgements free the
  // memory, the sender's retransmission (the same bytes) goes through.
  a.server("");  // acknowledges everything forwarded so far
  auto again = a.client(test::body_segment(1400, 'a'));
  CHECK(again.verdict.kind != VerdictKind::kDrop);
  CHECK(p.counters().get(Counter::segments_overlap_conflict) == 0);
}

TEST_CASE("the flow retaining the most lets go so that another flow can go on") {
  core::Pipeline p(tiny_budget(6 * kBlock));
  PipelineSession hog(p, 41001);
  hog.open_data();
  const uint32_t hog_first = hog.client_seq;
  fill_until_dropped(hog, 'h');
  const size_t hog_drops = p.counters().get(Counter::budget_drops);
  CHECK(hog_drops == 1);

  PipelineSession polite(p, 41002);
  polite.now = hog.now + milliseconds(20);  // past the 10 ms pause after a search found no victim
  polite.open_data();  // its commands need room: the hog's retained bytes go
  CHECK(p.counters().get(Counter::budget_releases) >= 1);
  CHECK(p.counters().get(Counter::budget_released_bytes) >= 4 * kBlock);
  CHECK(p.counters().get(Counter::budget_drops) == hog_drops);  // the polite flow lost nothing
  auto o = polite.client(test::body_segment(1400, 'p'));
  CHECK(o.verdict.kind != VerdictKind::kDrop);
  CHECK(p.budget_used() <= 6 * kBlock);

  // A retransmission of the hog's bytes that were let go cannot be compared: dropped, counted,
  // never forwarded unchecked (and not mistaken for a conflict).
  auto re = hog.client_at(hog_first, test::body_segment(1400, 'h'));
  CHECK(re.verdict.kind == VerdictKind::kDrop);
  CHECK(p.counters().get(Counter::retransmissions_unverifiable) == 1);
  CHECK(p.counters().get(Counter::segments_overlap_conflict) == 0);
  // Even with different bytes: nothing unchecked leaves.
  auto forged = hog.client_at(hog_first, test::body_segment(1400, 'X'));
  CHECK(forged.verdict.kind == VerdictKind::kDrop);
}

TEST_CASE("out-of-order segments are not held beyond the budget") {
  core::Pipeline p(tiny_budget(3 * kBlock));
  PipelineSession a(p, 41003);
  a.open_data();
  // Beyond a hole: held, until the held bytes reach the budget.
  size_t held = 0, dropped = 0;
  uint32_t seq = a.client_seq + 1400;
  for (int i = 0; i < 40; ++i, seq += 1400) {
    auto o = a.client_at(seq, test::body_segment(1400, 'o'));
    if (o.verdict.kind == VerdictKind::kHold) ++held;
    if (o.verdict.kind == VerdictKind::kDrop) ++dropped;
  }
  CHECK(held > 0);
  CHECK(dropped > 0);
  CHECK(p.budget_used() <= 3 * kBlock);
}

TEST_CASE("no budget: nothing is dropped for memory") {
  core::Pipeline p(tiny_budget(0));
  PipelineSession a(p, 41004);
  a.open_data();
  CHECK(fill_until_dropped(a, 'a', 200) == 200);
  CHECK(p.counters().get(Counter::budget_drops) == 0);
  CHECK(p.budget_used() > 200 * 1400);
}

TEST_CASE("by default a flow that meets the budget with no one to give way is reset") {
  core::PipelineConfig c = tiny_budget(4 * kBlock);
  c.exceptions = policy::ExceptionPolicy{};  // reject
  core::Pipeline p(c);
  PipelineSession a(p, 41003);
  a.open_data();
  fill_until_dropped(a, 'a');
  CHECK(p.counters().get(Counter::exception_memory_budget) == 1);
  CHECK(p.counters().get(Counter::flows_reset) == 1);
  CHECK(p.budget_used() <= 4 * kBlock);
}

TEST_CASE("client bytes waiting for a reply count against the budget until consumed") {
  core::Pipeline p(tiny_budget(0));
  PipelineSession a(p, 41004);
  a.handshake();
  a.server("220 mx.example.org ESMTP\r\n");
  a.client("EHLO c.example.org\r\n");
  a.server("250 mx.example.org\r\n");
  a.client("MAIL FROM:<a@example.org>\r\n");
  a.server("250 ok\r\n");
  a.client("RCPT TO:<b@example.org>\r\n");
  a.server("250 ok\r\n");
  a.client("DATA\r\n");
  const size_t before = p.budget_used();
  // The body, before the 354 came back: it waits in the session's pending bytes.
  for (int i = 0; i < 10; ++i) a.client(test::body_segment(1400, 'w'));
  CHECK(p.budget_used() >= before + 10 * 1400);
  a.server("354 go ahead\r\n");  // the reply: the waiting bytes are consumed as the body
  CHECK(p.budget_used() < before + 10 * 1400);
}
