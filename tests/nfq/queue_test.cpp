// The pure parts of the NFQUEUE wrapper: the /proc statistics line and the socket sizing. The
// socket itself is exercised by tests/integration/rules_test.sh.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "core/counters.hpp"
#include "nfq/queue.hpp"

using sg::nfq::parse_kernel_stats_line;

TEST_CASE("a line of /proc/net/netfilter/nfnetlink_queue") {
  // queue portid waiting copy_mode copy_range queue_dropped user_dropped id_sequence 1
  auto s = parse_kernel_stats_line("    1 3040983535     7 2 65531    12    34 40123 1");
  REQUIRE(s);
  CHECK(s->queue_num == 1);
  CHECK(s->peer_portid == 3040983535u);
  CHECK(s->queue_total == 7);
  CHECK(s->copy_mode == 2);
  CHECK(s->copy_range == 65531);
  CHECK(s->queue_dropped == 12);
  CHECK(s->user_dropped == 34);
  CHECK(s->id_sequence == 40123);
}

TEST_CASE("lines that are not queue lines are refused") {
  for (const char* bad : {"", "queue portid", "1 2 3", "1 2 3 4 5 6 7 x 1", "70000 1 0 2 0 0 0 0 1",
                          "1 2 3 4 5 6 7-8 1"}) {
    INFO(bad);
    CHECK_FALSE(parse_kernel_stats_line(bad));
  }
}

TEST_CASE("the socket buffer follows the queue length, within bounds") {
  using sg::nfq::receive_buffer_for;
  CHECK(receive_buffer_for(4096) == 4096u * 2048);
  CHECK(receive_buffer_for(1) == 2u << 20);           // floor: a burst of large packets
  CHECK(receive_buffer_for(1u << 20) == 256u << 20);  // cap: kernel memory per queue
}

TEST_CASE("counter names are unique across the pipeline and the queue") {
  // main prints both lists as one "name = value" block.
  std::set<std::string> names;
  for (const auto& c : sg::core::kCounterInfo) CHECK(names.insert(std::string(c.name)).second);
  for (const auto& c : sg::nfq::kQueueCounterInfo) CHECK(names.insert(std::string(c.name)).second);
}
