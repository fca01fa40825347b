// What the daemon's shutdown does to connections: zero-delta ones are left alone (a new daemon
// picks them up mid-stream), mapped ones are reset both ways.
#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "core/pipeline.hpp"
#include "net/packet.hpp"
#include "support/packet_builder.hpp"

using namespace sg;

namespace {

struct Session {
  core::Pipeline pipeline;
  core::Output out;
  uint32_t c = 1000, s = 5000, id = 1;
  explicit Session(std::shared_ptr<const policy::Profile> p)
      : pipeline(core::PipelineConfig{policy::single_policy(std::move(p))}) {}

  test::PacketBuilder from(bool client) const {
    test::PacketBuilder b;
    client ? b.v4("198.18.1.1", "198.18.2.1").ports(40000, 25)
           : b.v4("198.18.2.1", "198.18.1.1").ports(25, 40000);
    return b;
  }
  core::PacketVerdict send(std::vector<uint8_t> pkt) {
    out.clear();
    return pipeline.process(id++, pkt, false, Timestamp{}, out);
  }
  void open() {
    send(from(true).seq(c - 1).flags(net::kTcpSyn).build());
    send(from(false).seq(s - 1).ack(c).flags(net::kTcpSyn | net::kTcpAck).build());
    send(from(true).seq(c).ack(s).flags(net::kTcpAck).build());
  }
  void data(bool client, const std::string& text) {
    uint32_t& seq = client ? c : s;
    send(from(client)
             .seq(seq)
             .ack(client ? s : c)
             .flags(net::kTcpAck | net::kTcpPsh)
             .payload(text)
             .build());
    seq += static_cast<uint32_t>(text.size());
  }
  size_t resets_at_drain() {
    out.clear();
    pipeline.drain(Timestamp{}, out);
    size_t n = 0;
    for (const core::Injection& i : out.injected) {
      const auto v = net::parse_packet(i.bytes);
      if (v && (v->flags & net::kTcpRst)) ++n;
    }
    return n;
  }
};

}  // namespace

TEST_CASE("shutdown leaves a zero-delta connection alone", "[shutdown]") {
  Session t(policy::builtin_profile("pix-mailguard"));  // masks keep lengths
  t.open();
  t.data(false, "220 mx.example.org ESMTP\r\n");
  t.data(true, "VRFY root\r\n");
  CHECK(t.resets_at_drain() == 0);
  CHECK(t.pipeline.counters().get(core::Counter::flows_reset_at_exit) == 0);
}

TEST_CASE("shutdown resets a connection whose numbers are mapped, both ways", "[shutdown]") {
  auto p = std::make_shared<policy::Profile>(*policy::builtin_profile("modern"));
  p->verbs[static_cast<size_t>(smtp::Verb::kVrfy)] = policy::CommandAction::kAnswer;
  Session t(p);
  t.open();
  t.data(false, "220 mx.example.org ESMTP\r\n");
  t.data(true, "VRFY root\r\n");  // removed: the client's stream is 11 bytes shorter now
  CHECK(t.resets_at_drain() == 2);
  CHECK(t.pipeline.counters().get(core::Counter::flows_reset_at_exit) == 1);
  REQUIRE_FALSE(t.out.decisions.empty());
  CHECK(policy::info(t.out.decisions.back().event).name == "flow_reset");
  CHECK(t.out.decisions.back().ends_connection);
  CHECK(t.resets_at_drain() == 0);  // once
}
