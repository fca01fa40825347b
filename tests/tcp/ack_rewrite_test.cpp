// rewrite_ack_and_sack on whole packets: only the ack field and the SACK edges may change.
#include "tcp/ack_rewrite.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <set>
#include <vector>

#include "support/packet_builder.hpp"

namespace sg::tcp {
namespace {

using test::PacketBuilder;

// The client's stream (client ISN 999, so offset 0 is seq 1000) had original [10,20) deleted and
// [40,50) replaced by 3 bytes: rewritten offsets 10 (the cut) and [30,33) (the replacement).
constexpr uint32_t kClientIsn = 999;
constexpr uint32_t kBase = kClientIsn + 1;

SeqMap client_map() {
  SeqMap m;
  REQUIRE(m.add(10, 10, 0));
  REQUIRE(m.add(40, 10, 3));
  return m;
}

// The server's answer: it acknowledges rewritten offsets of the client's stream.
PacketBuilder server_ack(uint32_t ack) {
  PacketBuilder b;
  b.v4("198.18.2.1", "198.18.1.1").ports(25, 40000).seq(5000).ack(ack).flags(net::kTcpAck);
  return b;
}

// Applies the rewrite and returns the byte indices that changed.
std::set<size_t> rewrite(std::vector<uint8_t>& packet, const SeqMap& m, bool* changed) {
  const auto v = net::parse_packet(packet);
  REQUIRE(v);
  const std::vector<uint8_t> before = packet;
  *changed = rewrite_ack_and_sack(packet, *v, m, SeqSpace(kClientIsn), 60);
  std::set<size_t> diff;
  for (size_t i = 0; i < packet.size(); ++i) {
    if (packet[i] != before[i]) diff.insert(i);
  }
  return diff;
}

// Indices of the ack field and of the SACK blocks: the only bytes allowed to change.
std::set<size_t> mappable_bytes(const net::PacketView& v) {
  std::set<size_t> out;
  for (size_t i = 0; i < 4; ++i) out.insert(v.tcp_offset + 8 + i);
  for (size_t b = 0; b < v.sack_count; ++b) {
    for (size_t i = 0; i < 8; ++i) out.insert(v.sack_offsets[b] + i);
  }
  return out;
}

TEST_CASE("ack at a deletion point acknowledges the deleted bytes", "[seq_map][ack_rewrite]") {
  auto packet = server_ack(kBase + 10).build();
  bool changed = false;
  const auto diff = rewrite(packet, client_map(), &changed);
  CHECK(changed);
  const auto v = net::parse_packet(packet);
  REQUIRE(v);
  CHECK(v->ack == kBase + 20);
  for (size_t i : diff) CHECK(mappable_bytes(*v).count(i) == 1);
}

TEST_CASE("ack inside a shorter replacement holds back the edited range",
          "[seq_map][ack_rewrite]") {
  auto packet = server_ack(kBase + 31).build();
  bool changed = false;
  rewrite(packet, client_map(), &changed);
  CHECK(changed);
  CHECK(net::parse_packet(packet)->ack == kBase + 40);
}

TEST_CASE("SACK blocks spanning edits map edge by edge", "[seq_map][ack_rewrite]") {
  // Blocks in rewritten offsets -> expected original offsets:
  //   [5,25)  spans the cut          -> [5,35)
  //   [31,60) starts in replacement  -> [50,77): the left edge rounds up past the edited range
  //   [10,12) starts at the cut      -> [20,22)
  auto packet =
      server_ack(kBase + 5)
          .sack({{kBase + 5, kBase + 25}, {kBase + 31, kBase + 60}, {kBase + 10, kBase + 12}})
          .build();
  bool changed = false;
  const auto diff = rewrite(packet, client_map(), &changed);
  CHECK(changed);
  const auto v = net::parse_packet(packet);
  REQUIRE(v);
  REQUIRE(v->sack_count == 3);
  CHECK(v->ack == kBase + 5);  // before every edit: unchanged
  const std::vector<net::SackBlock> want = {
      {kBase + 5, kBase + 35}, {kBase + 50, kBase + 77}, {kBase + 20, kBase + 22}};
  for (size_t i = 0; i < want.size(); ++i) {
    const auto got = net::read_sack(packet, *v, i);
    CHECK(got.left == want[i].left);
    CHECK(got.right == want[i].right);
  }
  const auto allowed = mappable_bytes(*v);
  for (size_t i : diff) CHECK(allowed.count(i) == 1);
  // Block 0 starts before every edit: its left edge keeps its bytes.
  for (size_t i = 0; i < 4; ++i) CHECK(diff.count(v->sack_offsets[0] + i) == 0);
}

TEST_CASE("nothing to map leaves the packet byte for byte", "[seq_map][ack_rewrite]") {
  auto packet = server_ack(kBase + 5).sack({{kBase + 1, kBase + 3}}).timestamps(7, 9).build();
  bool changed = true;
  const auto diff = rewrite(packet, client_map(), &changed);
  CHECK_FALSE(changed);
  CHECK(diff.empty());
}

TEST_CASE("without ACK the ack field is left as sent", "[seq_map][ack_rewrite]") {
  auto packet = server_ack(kBase + 60).flags(net::kTcpRst).build();
  bool changed = true;
  const auto diff = rewrite(packet, client_map(), &changed);
  CHECK_FALSE(changed);
  CHECK(diff.empty());
}

}  // namespace
}  // namespace sg::tcp
