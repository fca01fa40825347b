// TCP state an attacker cannot move (tcp/connection): packets the receiver would not take
// change nothing in the gateway, and losing sight of a stream ends in the exception policy.
#include <catch2/catch.hpp>
#include <string>

#include "core/pipeline.hpp"
#include "core/pipeline_session.hpp"

using namespace sg;
using core::Counter;
using core::VerdictKind;

namespace {

core::PipelineConfig config(std::string_view profile = "pix-mailguard") {
  core::PipelineConfig c;
  c.policies = policy::single_policy(policy::builtin_profile(profile));
  return c;
}

std::string payload_of(std::span<const uint8_t> pkt) {
  auto v = net::parse_packet(pkt);
  REQUIRE(v);
  return std::string(reinterpret_cast<const char*>(pkt.data()) + v->payload_offset, v->payload_len);
}

// Greeting and EHLO done; the next client line is inspected as a command.
void open_session(test::PipelineSession& s) {
  s.handshake();
  s.server("220 mx.example.org ESMTP\r\n");
  s.client("EHLO c.example.org\r\n");
  s.server("250 mx.example.org\r\n");
}

// VRFY is masked by pix-mailguard: the flow is still inspected.
void check_still_inspected(test::PipelineSession& s) {
  auto o = s.client("VRFY postmaster\r\n");
  REQUIRE(o.verdict.kind == VerdictKind::kAcceptModified);
  CHECK(payload_of(o.packet) == "XXXXXXXXXXXXXXX\r\n");
}

uint64_t count(const core::Pipeline& p, Counter c) {
  return p.counters().get(c);
}

std::vector<uint8_t> rst(test::PipelineSession& s, bool from_client, uint32_t seq) {
  return s.base(from_client).seq(seq).flags(net::kTcpRst).build();
}

}  // namespace

TEST_CASE("a RST not at the next sequence number is forwarded and changes nothing") {
  core::Pipeline p(config());
  test::PipelineSession s(p, 41000);
  open_session(s);
  for (uint32_t off : {1u, 100000u, 0x80000000u}) {
    auto o = s.send(rst(s, true, s.client_seq + off));
    CHECK(o.verdict.kind == VerdictKind::kAccept);  // the receiver decides (challenge ACK)
  }
  CHECK(count(p, Counter::tcp_rst_ignored) == 3);
  CHECK(count(p, Counter::flows_closed) == 0);
  // Long after a closed flow would have expired, the flow is inspected as before.
  s.now += seconds(30);
  core::Output out;
  p.on_timer(s.now, out);
  check_still_inspected(s);
}

TEST_CASE("a RST at exactly the next sequence number closes the flow") {
  core::Pipeline p(config());
  test::PipelineSession s(p, 41001);
  open_session(s);
  s.send(rst(s, true, s.client_seq));
  CHECK(count(p, Counter::flows_closed) == 1);
  CHECK(count(p, Counter::tcp_rst_ignored) == 0);
}

TEST_CASE("a packet with a wrong TCP checksum changes nothing and is dropped") {
  core::Pipeline p(config());
  test::PipelineSession s(p, 41002);
  open_session(s);
  s.meta.checksum_unverified = true;
  auto bad = rst(s, true, s.client_seq);
  bad[bad.size() - 3] ^= 0x5a;  // inside the TCP header's checksum or urgent field
  auto o = s.send(bad);
  CHECK(o.verdict.kind == VerdictKind::kDrop);
  CHECK(count(p, Counter::tcp_bad_checksum) == 1);
  CHECK(count(p, Counter::flows_closed) == 0);
  // The same packet with its checksum right is taken.
  s.send(rst(s, true, s.client_seq));
  CHECK(count(p, Counter::flows_closed) == 1);
}

TEST_CASE("a FIN away from its place changes nothing") {
  core::Pipeline p(config());
  test::PipelineSession s(p, 41003);
  open_session(s);
  s.send(s.base(true)
             .seq(s.client_seq + 500000)
             .ack(s.server_seq)
             .flags(net::kTcpFin | net::kTcpAck)
             .build());
  CHECK(count(p, Counter::tcp_fin_ignored) == 1);
  s.now += seconds(120);
  core::Output out;
  p.on_timer(s.now, out);
  check_still_inspected(s);
  // At its place it counts.
  s.send(
      s.base(true).seq(s.client_seq).ack(s.server_seq).flags(net::kTcpFin | net::kTcpAck).build());
  CHECK(count(p, Counter::tcp_fin_ignored) == 1);
  std::vector<core::FlowSummary> flows;
  p.summarize_flows(flows, 1);
  REQUIRE(flows.size() == 1);
  CHECK(flows[0].state == "closing");
}

TEST_CASE("a SYN with a new ISN never erases a live inspected flow") {
  core::Pipeline p(config());
  test::PipelineSession s(p, 41004);
  open_session(s);
  auto o = s.send(s.base(true).seq(s.client_seq + 777777).flags(net::kTcpSyn).build());
  CHECK(o.verdict.kind == VerdictKind::kDrop);
  CHECK(count(p, Counter::tcp_syn_refused) == 1);
  CHECK(count(p, Counter::flows_created) == 1);
  check_still_inspected(s);
}

TEST_CASE("payload before the stream's start is never placed at offset 0") {
  core::Pipeline p(config());
  test::PipelineSession s(p, 41005);
  s.handshake();
  // The first data segment starts 5 bytes before ISN + 1: a receiver trims "NOOP " and reads
  // "EXPN root".
  auto o = s.client_at(s.client_seq - 5, "NOOP EXPN root\r\n");
  CHECK(o.verdict.kind == VerdictKind::kDrop);
  CHECK(count(p, Counter::exception_unplaceable) == 1);
  CHECK(count(p, Counter::flows_reset) == 1);  // reject, the default
}

TEST_CASE("an ack of bytes never sent is dropped and releases nothing") {
  core::Pipeline p(config());
  test::PipelineSession s(p, 41006);
  open_session(s);
  s.client("NOOP xxxx\r\n");
  // The server "acknowledges" far more than it was sent... and the client acks the server's
  // stream beyond what the server sent.
  auto o =
      s.send(s.base(true).seq(s.client_seq).ack(s.server_seq + 100000).flags(net::kTcpAck).build());
  CHECK(o.verdict.kind == VerdictKind::kDrop);
  CHECK(count(p, Counter::tcp_ack_unsent) == 1);
  auto o2 =
      s.send(s.base(false).seq(s.server_seq).ack(s.client_seq + 5000).flags(net::kTcpAck).build());
  CHECK(o2.verdict.kind == VerdictKind::kDrop);
  CHECK(count(p, Counter::tcp_ack_unsent) == 2);
  // The NOOP is still retained: a same-length retransmission with other bytes is a conflict.
  auto r = s.client_at(s.client_seq - 11, "VRFY post\r\n");
  CHECK(r.verdict.kind == VerdictKind::kDrop);
  CHECK(count(p, Counter::segments_overlap_conflict) == 1);
  // A true ack (everything sent, FIN room included) goes on.
  auto ok = s.send(s.base(true).seq(s.client_seq).ack(s.server_seq).flags(net::kTcpAck).build());
  CHECK(ok.verdict.kind == VerdictKind::kAccept);
}

TEST_CASE("each direction is bound to its handshake interface: a spoofed 354 is dropped") {
  core::Pipeline p(config("modern"));
  test::PipelineSession s(p, 41007);
  s.meta.in_interface = 1;  // client side
  s.send(s.base(true).seq(s.client_seq - 1).flags(net::kTcpSyn).build());
  s.meta.in_interface = 2;  // server side
  s.send(s.base(false)
             .seq(s.server_seq - 1)
             .ack(s.client_seq)
             .flags(net::kTcpSyn | net::kTcpAck)
             .build());
  s.meta.in_interface = 1;
  s.send(s.base(true).seq(s.client_seq).ack(s.server_seq).flags(net::kTcpAck).build());
  s.meta.in_interface = 2;
  s.server("220 mx.example.org ESMTP\r\n");
  s.meta.in_interface = 1;
  s.client("DATA\r\n");
  // "The server's" 354, sent from the client's side.
  auto spoof = s.server("354 go ahead\r\n");
  CHECK(spoof.verdict.kind == VerdictKind::kDrop);
  CHECK(count(p, Counter::tcp_wrong_interface) == 1);
  // Locally generated packets (no input interface) are never refused.
  s.meta.in_interface = 0;
  s.server_seq -= 14;
  auto local = s.server("503 no\r\n");
  CHECK(local.verdict.kind != VerdictKind::kDrop);
}

TEST_CASE("a lost SYN-ACK answered with a new ISN does not stall the session") {
  core::Pipeline p(config());
  test::PipelineSession s(p, 41008);
  const uint32_t isn = s.client_seq - 1;
  s.send(s.base(true).seq(isn).flags(net::kTcpSyn).build());
  // The first SYN-ACK passes the gateway and is lost; the client retransmits its SYN and the
  // server answers it with another ISN, which the client takes.
  s.send(s.base(false).seq(123456).ack(s.client_seq).flags(net::kTcpSyn | net::kTcpAck).build());
  s.send(s.base(true).seq(isn).flags(net::kTcpSyn).build());
  s.send(s.base(false)
             .seq(s.server_seq - 1)
             .ack(s.client_seq)
             .flags(net::kTcpSyn | net::kTcpAck)
             .build());
  s.send(s.base(true).seq(s.client_seq).ack(s.server_seq).flags(net::kTcpAck).build());
  auto o = s.server("220 mx.example.org\r\n");
  REQUIRE(o.verdict.kind == VerdictKind::kAcceptModified);
  CHECK(payload_of(o.packet) == "220 **************\r\n");
  CHECK(count(p, Counter::tcp_synack_replaced) == 1);
}

TEST_CASE("mid-stream pickup is an exception: reject by default, RSTs both ways") {
  auto midstream_packet = [](test::PipelineSession& s) {
    return s.send(s.base(true)
                      .seq(777)
                      .ack(888)
                      .flags(net::kTcpAck | net::kTcpPsh)
                      .payload("VRFY root\r\n")
                      .build());
  };
  SECTION("reject") {
    core::Pipeline p(config());
    test::PipelineSession s(p, 41009);
    auto o = midstream_packet(s);
    CHECK(o.verdict.kind == VerdictKind::kDrop);
    REQUIRE(s.out.injected.size() == 2);
    for (const core::Injection& i : s.out.injected) {
      auto v = net::parse_packet(i.bytes);
      REQUIRE(v);
      CHECK((v->flags & net::kTcpRst));
    }
    REQUIRE(s.out.decisions.size() == 1);
    CHECK(s.out.decisions[0].event == policy::Event::kExceptionMidstream);
    CHECK(s.out.decisions[0].action == "reject");
    CHECK(count(p, Counter::exception_midstream) == 1);
    // Every later packet of it is refused.
    CHECK(midstream_packet(s).verdict.kind == VerdictKind::kDrop);
  }
  SECTION("pass: the operator's explicit choice") {
    auto c = config();
    c.exceptions.set(policy::Exception::kMidstream, policy::ExceptionAction::kPass);
    core::Pipeline p(c);
    test::PipelineSession s(p, 41010);
    CHECK(midstream_packet(s).verdict.kind == VerdictKind::kAccept);
    CHECK(s.out.injected.empty());
    CHECK(count(p, Counter::flows_midstream) == 1);
  }
  SECTION("drop-flow: silently") {
    auto c = config();
    c.exceptions.set(policy::Exception::kMidstream, policy::ExceptionAction::kDropFlow);
    core::Pipeline p(c);
    test::PipelineSession s(p, 41011);
    CHECK(midstream_packet(s).verdict.kind == VerdictKind::kDrop);
    CHECK(s.out.injected.empty());
    CHECK(midstream_packet(s).verdict.kind == VerdictKind::kDrop);
  }
  SECTION("drop-packet: no state") {
    auto c = config();
    c.exceptions.set(policy::Exception::kMidstream, policy::ExceptionAction::kDropPacket);
    core::Pipeline p(c);
    test::PipelineSession s(p, 41012);
    CHECK(midstream_packet(s).verdict.kind == VerdictKind::kDrop);
    CHECK(s.out.injected.empty());
    CHECK(count(p, Counter::flows_created) == 0);
  }
}

TEST_CASE("an expired inspected flow is never passed: its next packet meets the exception") {
  core::Pipeline p(config());
  test::PipelineSession s(p, 41013);
  open_session(s);
  s.now += seconds(3600);
  core::Output out;
  p.on_timer(s.now, out);
  CHECK(count(p, Counter::flows_expired) == 1);
  auto o = s.client("VRFY postmaster\r\n");
  CHECK(o.verdict.kind == VerdictKind::kDrop);
  CHECK(count(p, Counter::exception_midstream) == 1);
}

TEST_CASE("a truncated packet of an inspected flow is never passed: reject by default") {
  core::Pipeline p(config());
  test::PipelineSession s(p, 41014);
  open_session(s);
  auto pkt = s.base(true)
                 .seq(s.client_seq)
                 .ack(s.server_seq)
                 .flags(net::kTcpAck)
                 .payload(std::string(1000, 'a'))
                 .build();
  pkt.resize(600);  // what the kernel copied
  s.meta.truncated = true;
  auto o = s.send(pkt);
  CHECK(o.verdict.kind == VerdictKind::kDrop);
  CHECK(count(p, Counter::exception_truncated) == 1);
  CHECK(count(p, Counter::flows_reset) == 1);
  CHECK(s.out.injected.size() == 2);
}

TEST_CASE("a FIN that waited beyond a hole counts when it leaves in order") {
  // The lossy-lab finding: a FIN that came out of order was ignored for good, the flow never
  // closed, and the client's next connection from the same port found it "live".
  core::Pipeline p(config());
  test::PipelineSession s(p, 41015);
  open_session(s);
  const uint32_t seq = s.client_seq;
  auto fin = s.send(s.base(true)
                        .seq(seq + 6)
                        .ack(s.server_seq)
                        .flags(net::kTcpFin | net::kTcpAck)
                        .payload("QUIT\r\n")
                        .build());
  REQUIRE(fin.verdict.kind == VerdictKind::kHold);
  CHECK(count(p, Counter::tcp_fin_ignored) == 1);
  s.client_at(seq, "NOOP\r\n");
  std::vector<core::FlowSummary> flows;
  p.summarize_flows(flows, 1);
  REQUIRE(flows.size() == 1);
  CHECK(flows[0].state == "closing");
  // The server's FIN closes it; the client's port may then start a new connection.
  s.client_seq = seq + 13;
  s.send(
      s.base(false).seq(s.server_seq).ack(s.client_seq).flags(net::kTcpFin | net::kTcpAck).build());
  CHECK(count(p, Counter::flows_closed) == 1);
}

TEST_CASE("a client's new SYN on its port after a FIN at its place starts a new flow") {
  core::Pipeline p(config());
  test::PipelineSession s(p, 41016);
  open_session(s);
  s.send(
      s.base(false).seq(s.server_seq).ack(s.client_seq).flags(net::kTcpFin | net::kTcpAck).build());
  s.client_seq += 100000;
  s.server_seq += 100000;
  auto o = s.send(s.base(true).seq(s.client_seq - 1).flags(net::kTcpSyn).build());
  CHECK(o.verdict.kind == VerdictKind::kAccept);
  CHECK(count(p, Counter::tcp_syn_refused) == 0);
  CHECK(count(p, Counter::flows_created) == 2);
}
