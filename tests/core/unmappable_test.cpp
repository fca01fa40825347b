// A flow the pipeline does not know whose conntrack entry says an earlier daemon mapped it
// (core::PacketMeta::conntrack_mapped): never picked up mid-stream, dropped, both ends reset.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "core/pipeline.hpp"
#include "net/packet.hpp"
#include "support/packet_builder.hpp"

using namespace sg;

namespace {

struct Gateway {
  core::Pipeline pipeline{
      core::PipelineConfig{policy::single_policy(policy::builtin_profile("modern"))}};
  core::Output out;
  uint32_t id = 1;

  core::PacketVerdict send(std::vector<uint8_t> pkt, bool mapped) {
    out.clear();
    core::PacketMeta meta;
    meta.conntrack_mapped = mapped;
    return pipeline.process(id++, pkt, false, Timestamp{}, out, meta);
  }
  std::vector<net::PacketView> injected() const {
    std::vector<net::PacketView> v;
    for (const core::Injection& i : out.injected) {
      auto p = net::parse_packet(i.bytes);
      REQUIRE(p);
      v.push_back(*p);
    }
    return v;
  }
  uint64_t count(core::Counter c) const { return pipeline.counters().get(c); }
};

// A server segment of a connection under way: the server sends from 7000 and has received the
// client's stream up to 3000 (in the numbers the client used, as far as the server knows).
std::vector<uint8_t> server_segment(uint8_t flags, std::string_view payload = "250 ok\r\n") {
  return test::PacketBuilder()
      .v4("198.18.2.1", "198.18.1.1")
      .ports(25, 40000)
      .seq(7000)
      .ack(3000)
      .flags(flags)
      .payload(payload)
      .build();
}

}  // namespace

TEST_CASE("an unknown mapped flow is dropped and reset both ways", "[pipeline][restart]") {
  Gateway g;
  const auto v = g.send(server_segment(net::kTcpAck | net::kTcpPsh), true);
  CHECK(v.kind == core::VerdictKind::kDrop);
  const auto rsts = g.injected();
  REQUIRE(rsts.size() == 2);
  // To the sender (the server), at its own ack: the point it receives from, in its space.
  CHECK(rsts[0].flags & net::kTcpRst);
  CHECK(rsts[0].dst_port == 25);
  CHECK(rsts[0].src_port == 40000);
  CHECK(rsts[0].seq == 3000);
  // To the receiver (the client), at the sender's seq: exact when that direction is unshifted.
  CHECK(rsts[1].flags & net::kTcpRst);
  CHECK(rsts[1].dst_port == 40000);
  CHECK(rsts[1].src_port == 25);
  CHECK(rsts[1].seq == 7000);
  CHECK(rsts[1].payload_len == 0);
  CHECK(g.count(core::Counter::flows_reset_unmappable) == 1);
  CHECK(g.count(core::Counter::resets_sent) == 2);
  CHECK(g.count(core::Counter::flows_midstream) == 0);
  REQUIRE(g.out.decisions.size() == 1);
  CHECK(policy::info(g.out.decisions[0].event).name == "flow_reset");
  CHECK(g.out.decisions[0].subject == "unmappable");
}

TEST_CASE("every packet of an unknown mapped flow meets the same answer", "[pipeline][restart]") {
  Gateway g;
  for (int i = 0; i < 3; ++i) {
    CHECK(g.send(server_segment(net::kTcpAck, ""), true).kind == core::VerdictKind::kDrop);
    CHECK(g.injected().size() == 2);
  }
  CHECK(g.count(core::Counter::flows_reset_unmappable) == 3);
  CHECK(g.count(core::Counter::flows_created) == 0);
}

TEST_CASE("a RST of an unknown mapped flow is dropped and not answered", "[pipeline][restart]") {
  Gateway g;
  CHECK(g.send(server_segment(net::kTcpRst | net::kTcpAck, ""), true).kind ==
        core::VerdictKind::kDrop);
  CHECK(g.out.injected.empty());
}

TEST_CASE("without the flag an unknown flow meets the mid-stream exception (reject)",
          "[pipeline][restart]") {
  Gateway g;
  CHECK(g.send(server_segment(net::kTcpAck | net::kTcpPsh), false).kind ==
        core::VerdictKind::kDrop);
  CHECK(g.out.injected.size() == 2);
  CHECK(g.count(core::Counter::exception_midstream) == 1);
  CHECK(g.count(core::Counter::flows_reset_unmappable) == 0);
}

TEST_CASE("the flag does not touch a new connection or a flow the pipeline knows",
          "[pipeline][restart]") {
  Gateway g;
  auto client = [] {
    test::PacketBuilder b;
    b.v4("198.18.1.1", "198.18.2.1").ports(40000, 25);
    return b;
  };
  auto server = [] {
    test::PacketBuilder b;
    b.v4("198.18.2.1", "198.18.1.1").ports(25, 40000);
    return b;
  };
  // A SYN opens a connection (a new conntrack entry has no mark, but a stale one must not
  // matter either).
  CHECK(g.send(client().seq(999).flags(net::kTcpSyn).build(), true).kind ==
        core::VerdictKind::kAccept);
  CHECK(
      g.send(server().seq(4999).ack(1000).flags(net::kTcpSyn | net::kTcpAck).build(), true).kind ==
      core::VerdictKind::kAccept);
  CHECK(g.send(client().seq(1000).ack(5000).build(), true).kind == core::VerdictKind::kAccept);
  const auto v = g.send(server()
                            .seq(5000)
                            .ack(1000)
                            .flags(net::kTcpAck | net::kTcpPsh)
                            .payload("220 mx ESMTP\r\n")
                            .build(),
                        true);
  CHECK(v.kind == core::VerdictKind::kAccept);
  CHECK(g.out.injected.empty());
  CHECK(g.count(core::Counter::flows_reset_unmappable) == 0);
}
