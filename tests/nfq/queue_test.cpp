// The pure parts of the NFQUEUE wrapper: the /proc statistics line and the socket sizing. The
// socket itself is exercised by tests/integration/rules_test.sh.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>

#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

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

namespace {

// One netlink attribute as the kernel lays it out: {u16 len, u16 type} in host order, the value,
// padding to 4 bytes.
void put_attr(std::vector<uint8_t>& out, uint16_t type, const std::vector<uint8_t>& value) {
  const uint16_t len = static_cast<uint16_t>(4 + value.size());
  uint8_t header[4];
  std::memcpy(header, &len, 2);
  std::memcpy(header + 2, &type, 2);
  out.insert(out.end(), header, header + 4);
  out.insert(out.end(), value.begin(), value.end());
  while (out.size() % 4 != 0) out.push_back(0);
}

std::vector<uint8_t> be32(uint32_t v) {
  const uint32_t be = htonl(v);
  std::vector<uint8_t> out(4);
  std::memcpy(out.data(), &be, 4);
  return out;
}

// The payload of NFQA_CT as ctnetlink_glue_build writes it: tuples (nested), status, ..., mark.
std::vector<uint8_t> ct_payload(std::optional<uint32_t> mark) {
  std::vector<uint8_t> out;
  std::vector<uint8_t> tuple;
  put_attr(tuple, CTA_TUPLE_IP, std::vector<uint8_t>(16, 0xaa));  // contents not read
  put_attr(out, CTA_TUPLE_ORIG | NLA_F_NESTED, tuple);
  put_attr(out, CTA_TUPLE_REPLY | NLA_F_NESTED, tuple);
  put_attr(out, CTA_STATUS, be32(0x18e));
  put_attr(out, CTA_PROTOINFO | NLA_F_NESTED, std::vector<uint8_t>(5, 0x01));  // unaligned length
  if (mark) put_attr(out, CTA_MARK, be32(*mark));
  put_attr(out, CTA_ID, be32(0x12345678));
  return out;
}

}  // namespace

TEST_CASE("the ct mark of a queued packet comes from CTA_MARK inside NFQA_CT") {
  using sg::nfq::conntrack_mark;
  CHECK(conntrack_mark(ct_payload(0x00400000u)) == 0x00400000u);
  CHECK(conntrack_mark(ct_payload(0x00500001u)) == 0x00500001u);
  // The kernel leaves a zero mark out.
  CHECK(conntrack_mark(ct_payload(std::nullopt)) == 0);
  CHECK(conntrack_mark({}) == 0);
}

TEST_CASE("a ct payload cut anywhere never reads past its end") {
  using sg::nfq::conntrack_mark;
  const std::vector<uint8_t> whole = ct_payload(0x00400000u);
  size_t found_from = whole.size() + 1;
  for (size_t n = 0; n <= whole.size(); ++n) {
    INFO("first " << n << " bytes");
    const std::vector<uint8_t> cut(whole.begin(), whole.begin() + static_cast<long>(n));
    const uint32_t mark = conntrack_mark(cut);
    // Either the whole CTA_MARK attribute is there, or nothing is read.
    CHECK((mark == 0 || mark == 0x00400000u));
    if (mark != 0 && found_from > n) found_from = n;
  }
  // The mark is found exactly from the first cut that holds the whole attribute.
  CHECK(found_from < whole.size());
  // A length field that lies (beyond the end, or below the header) stops the walk.
  std::vector<uint8_t> lying = whole;
  const uint16_t huge = 0xfff0;
  std::memcpy(lying.data(), &huge, 2);
  CHECK(conntrack_mark(lying) == 0);
  const uint16_t tiny = 2;
  std::memcpy(lying.data(), &tiny, 2);
  CHECK(conntrack_mark(lying) == 0);
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
