#include "core/pipeline.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "net/checksum.hpp"
#include "net/packet.hpp"
#include "support/packet_builder.hpp"

using namespace sg;
using core::Release;
using core::VerdictKind;

namespace {

// A client and a server talking through the pipeline, with their own sequence numbers.
struct Conversation {
  explicit Conversation(std::string profile, bool v6 = false)
      : Conversation(core::PipelineConfig{policy::single_policy(policy::builtin_profile(profile))},
                     v6) {}
  explicit Conversation(core::PipelineConfig config, bool v6 = false)
      : pipeline(std::move(config)), v6_(v6) {}

  core::Pipeline pipeline;
  uint32_t client_seq = 0xfffffff0u;  // wraps around inside the dialogue
  uint32_t server_seq = 1000;
  uint32_t next_id = 1;
  Timestamp now{};
  core::Output released;

  struct Out {
    core::PacketVerdict verdict;
    std::vector<uint8_t> packet;  // as the pipeline left it
    uint32_t id = 0;
  };

  test::PacketBuilder base(bool from_client) const {
    test::PacketBuilder b;
    if (v6_) {
      from_client ? b.v6("2001:db8:1::1", "2001:db8:2::1") : b.v6("2001:db8:2::1", "2001:db8:1::1");
    } else {
      from_client ? b.v4("198.18.1.1", "198.18.2.1") : b.v4("198.18.2.1", "198.18.1.1");
    }
    from_client ? b.ports(40000, 25) : b.ports(25, 40000);
    return b;
  }

  Out send(std::vector<uint8_t> pkt) {
    Out o;
    o.id = next_id++;
    released.clear();
    o.verdict = pipeline.process(o.id, pkt, false, now, released);
    o.packet = std::move(pkt);
    return o;
  }

  void handshake() {
    send(base(true).seq(client_seq - 1).flags(net::kTcpSyn).build());
    send(
        base(false).seq(server_seq - 1).ack(client_seq).flags(net::kTcpSyn | net::kTcpAck).build());
    send(base(true).seq(client_seq).ack(server_seq).flags(net::kTcpAck).build());
  }

  // Sends the next data of one side (its sequence number advances), or data at an explicit
  // client sequence number (retransmissions, holes).
  Out data(bool from_client, std::string_view payload) {
    uint32_t& seq = from_client ? client_seq : server_seq;
    auto o = send(base(from_client)
                      .seq(seq)
                      .ack(from_client ? server_seq : client_seq)
                      .flags(net::kTcpAck | net::kTcpPsh)
                      .payload(payload)
                      .build());
    seq += static_cast<uint32_t>(payload.size());
    return o;
  }
  Out client(std::string_view payload) { return data(true, payload); }
  Out server(std::string_view payload) { return data(false, payload); }
  Out client_at(uint32_t seq, std::string_view payload) {
    return send(base(true).seq(seq).ack(server_seq).flags(net::kTcpAck).payload(payload).build());
  }

 private:
  bool v6_;
};

std::string payload(std::span<const uint8_t> pkt) {
  auto v = net::parse_packet(pkt);
  REQUIRE(v);
  return std::string(reinterpret_cast<const char*>(pkt.data()) + v->payload_offset, v->payload_len);
}

bool checksums_ok(std::span<const uint8_t> pkt) {
  auto v = net::parse_packet(pkt);
  return v && net::tcp_checksum_ok(pkt, *v) &&
         (v->ip_version == 6 || net::ipv4_checksum_ok(pkt, *v));
}

}  // namespace

TEST_CASE("the banner is masked in place with complete checksums, v4 and v6") {
  const bool v6 = GENERATE(false, true);
  Conversation c("pix-mailguard", v6);
  c.handshake();
  auto o = c.server("220 mx.example.org ESMTP 2.0\r\n");
  CHECK(o.verdict.kind == VerdictKind::kAcceptModified);
  CHECK(payload(o.packet) == "220 *********************2*0\r\n");
  CHECK(checksums_ok(o.packet));
}

TEST_CASE("a command split across segments is held until it is decided") {
  Conversation c("pix-mailguard");
  c.handshake();
  c.server("220 mx\r\n");
  auto first = c.client("HEL");  // HELO or HELP?
  CHECK(first.verdict.kind == VerdictKind::kHold);
  CHECK(c.pipeline.has_held_packets());
  auto second = c.client("P\r\n");
  REQUIRE(c.released.released.size() == 1);
  CHECK(c.released.released[0].packet_id == first.id);
  CHECK(c.released.released[0].kind == VerdictKind::kAcceptModified);
  CHECK(payload(c.released.released[0].bytes) == "XXX");
  CHECK(checksums_ok(c.released.released[0].bytes));
  CHECK(second.verdict.kind == VerdictKind::kAcceptModified);
  CHECK(payload(second.packet) == "X\r\n");
  CHECK_FALSE(c.pipeline.has_held_packets());
}

TEST_CASE("an allowed command split across segments is released unchanged") {
  Conversation c("pix-mailguard");
  c.handshake();
  c.server("220 mx\r\n");
  auto first = c.client("HEL");
  CHECK(first.verdict.kind == VerdictKind::kHold);
  auto second = c.client("O c\r\n");
  REQUIRE(c.released.released.size() == 1);
  CHECK(c.released.released[0].kind == VerdictKind::kAccept);
  CHECK(second.verdict.kind == VerdictKind::kAccept);
}

TEST_CASE("a retransmission of held bytes is dropped; the held original carries them") {
  Conversation c("pix-mailguard");
  c.handshake();
  c.server("220 mx\r\n");
  const uint32_t seq = c.client_seq;
  c.client("HEL");
  auto again = c.client_at(seq, "HEL");
  CHECK(again.verdict.kind == VerdictKind::kDrop);
  CHECK(c.pipeline.counters().get(core::Counter::retransmissions_dropped) == 1);
}

TEST_CASE("retransmissions get the same rewritten bytes, however they are cut") {
  Conversation c("pix-mailguard");
  c.handshake();
  c.server("220 mx\r\n");
  const uint32_t seq = c.client_seq;
  auto o = c.client("VRFY a\r\nNOOP\r\n");
  CHECK(payload(o.packet) == "XXXXXX\r\nNOOP\r\n");
  // Re-segmented: a piece from inside the masked line, and one spanning both lines.
  auto r1 = c.client_at(seq + 2, "FY");
  CHECK(payload(r1.packet) == "XX");
  CHECK(checksums_ok(r1.packet));
  auto r2 = c.client_at(seq + 4, " a\r\nNO");
  CHECK(payload(r2.packet) == "XX\r\nNO");
  // Once the server acknowledged them the edits are gone, and so is any need for them.
  c.send(c.base(false).seq(c.server_seq).ack(c.client_seq).flags(net::kTcpAck).build());
  auto r3 = c.client_at(seq, "VRFY a\r\n");
  CHECK(r3.verdict.kind == VerdictKind::kAccept);
}

TEST_CASE("a segment beyond a hole is held and inspected when the hole fills") {
  Conversation c("pix-mailguard");
  c.handshake();
  c.server("220 mx\r\n");
  const uint32_t seq = c.client_seq;
  // "VRFY x\r\n" arrives before "NOOP\r\n", which was sent first.
  auto late = c.client_at(seq + 6, "VRFY x\r\n");
  CHECK(late.verdict.kind == VerdictKind::kHold);
  CHECK(c.pipeline.counters().get(core::Counter::segments_out_of_order) == 1);
  auto first = c.client_at(seq, "NOOP\r\n");
  CHECK(first.verdict.kind == VerdictKind::kAccept);
  REQUIRE(c.released.released.size() == 1);
  CHECK(c.released.released[0].packet_id == late.id);
  CHECK(c.released.released[0].kind == VerdictKind::kAcceptModified);
  CHECK(payload(c.released.released[0].bytes) == "XXXXXX\r\n");
  CHECK(checksums_ok(c.released.released[0].bytes));
  CHECK_FALSE(c.pipeline.has_held_packets());
}

TEST_CASE("a held segment whose bytes another segment brought is still compared") {
  // The evasion generator's finding (seed 1, case 31): "VRFY x\r\n" waits beyond a hole; a
  // later segment fills the hole AND covers it with "NOOP x\r\n". The held packet leaves first,
  // so a receiver would read its bytes: it must be dropped, not released uncompared.
  Conversation c("modern");
  c.handshake();
  c.server("220 mx\r\n");
  const uint32_t seq = c.client_seq;
  auto late = c.client_at(seq + 6, "VRFY x\r\n");
  REQUIRE(late.verdict.kind == VerdictKind::kHold);
  auto cover = c.client_at(seq, "NOOP\r\nNOOP x\r\n");
  CHECK(cover.verdict.kind == VerdictKind::kAccept);
  REQUIRE(c.released.released.size() == 1);
  CHECK(c.released.released[0].packet_id == late.id);
  CHECK(c.released.released[0].kind == VerdictKind::kDrop);
  CHECK(c.pipeline.counters().get(core::Counter::segments_overlap_conflict) == 1);
  // The same bytes held are a harmless duplicate and go out.
  auto late2 = c.client_at(seq + 20, "RSET\r\n");
  REQUIRE(late2.verdict.kind == VerdictKind::kHold);
  c.client_at(seq + 14, "RSET\r\nRSET\r\n");
  REQUIRE(c.released.released.size() == 1);
  CHECK(c.released.released[0].kind == VerdictKind::kAccept);
}

TEST_CASE("a segment beyond a hole that never fills is dropped, never forwarded") {
  Conversation c("pix-mailguard");
  c.handshake();
  c.server("220 mx\r\n");
  auto late = c.client_at(c.client_seq + 6, "VRFY x\r\n");
  REQUIRE(late.verdict.kind == VerdictKind::kHold);
  core::Output out;
  c.pipeline.on_timer(c.now + milliseconds(2000), out);
  REQUIRE(out.released.size() == 1);
  CHECK(out.released[0].packet_id == late.id);
  CHECK(out.released[0].kind == VerdictKind::kDrop);
  CHECK_FALSE(c.pipeline.has_held_packets());
}

TEST_CASE("segments beyond a hole are fed in stream order whatever their arrival order") {
  Conversation c("pix-mailguard");
  c.handshake();
  c.server("220 mx\r\n");
  const uint32_t seq = c.client_seq;
  const std::string text = "HELO a\r\nVRFY b\r\nNOOP\r\n";
  // Pieces arrive as 3rd, 2nd, 1st.
  auto p3 = c.client_at(seq + 16, text.substr(16));
  auto p2 = c.client_at(seq + 8, text.substr(8, 8));
  CHECK(p3.verdict.kind == VerdictKind::kHold);
  CHECK(p2.verdict.kind == VerdictKind::kHold);
  auto p1 = c.client_at(seq, text.substr(0, 8));
  CHECK(p1.verdict.kind == VerdictKind::kAccept);
  REQUIRE(c.released.released.size() == 2);
  CHECK(c.released.released[0].packet_id == p3.id);
  CHECK(payload(c.released.released[0].bytes) == "NOOP\r\n");
  CHECK(c.released.released[1].packet_id == p2.id);
  CHECK(payload(c.released.released[1].bytes) == "XXXXXX\r\n");
}

TEST_CASE("a held partial line is neutralised when its hold times out") {
  Conversation c("pix-mailguard");
  c.handshake();
  c.server("220 mx\r\n");
  auto first = c.client("HEL");
  REQUIRE(first.verdict.kind == VerdictKind::kHold);
  CHECK(c.pipeline.next_deadline() <= c.now + milliseconds(2000));
  core::Output out;
  c.pipeline.on_timer(c.now + milliseconds(1999), out);
  CHECK(out.released.empty());
  c.pipeline.on_timer(c.now + milliseconds(2000), out);
  REQUIRE(out.released.size() == 1);
  CHECK(payload(out.released[0].bytes) == "XXX");
  // The rest of that line follows the neutralisation.
  auto rest = c.client("O c\r\n");
  CHECK(payload(rest.packet) == "XXX\r\n");
}

TEST_CASE("drain releases every held packet") {
  Conversation c("pix-mailguard");
  c.handshake();
  c.server("220 mx\r\n");
  c.client("HEL");
  core::Output out;
  c.pipeline.drain(c.now, out);
  CHECK(out.released.size() == 1);
  CHECK_FALSE(c.pipeline.has_held_packets());
}

TEST_CASE("flows seen without a handshake are refused by default, passed only by choice") {
  SECTION("reject (the default)") {
    Conversation c("pix-mailguard");
    auto o = c.server("220 mx.example.org\r\n");
    CHECK(o.verdict.kind == VerdictKind::kDrop);
    CHECK(c.released.injected.size() == 2);
    CHECK(c.pipeline.counters().get(core::Counter::exception_midstream) == 1);
  }
  SECTION("exception-policy-midstream = pass") {
    core::PipelineConfig cfg{policy::single_policy(policy::builtin_profile("pix-mailguard"))};
    cfg.exceptions.set(policy::Exception::kMidstream, policy::ExceptionAction::kPass);
    Conversation c(cfg);
    auto o = c.server("220 mx.example.org\r\n");
    CHECK(o.verdict.kind == VerdictKind::kAccept);
    CHECK(c.pipeline.counters().get(core::Counter::flows_midstream) == 1);
  }
}

TEST_CASE("packets that fail validation are dropped and counted") {
  Conversation c("modern");
  auto pkt = c.base(true).seq(1).flags(net::kTcpAck).payload("NOOP\r\n").build();
  pkt[0] = 0x47;  // IHL 7 on a 5-word header: options would run into TCP
  pkt.resize(22);
  auto o = c.send(pkt);
  CHECK(o.verdict.kind == VerdictKind::kDrop);
  CHECK(c.pipeline.counters().get(core::Counter::packets_invalid) == 1);
}

TEST_CASE("after STARTTLS and the client's TLS hello the flow is marked for kernel bypass") {
  core::PipelineConfig cfg{policy::single_policy(policy::builtin_profile("modern"))};
  cfg.done_mark = 0x100000;
  Conversation c(cfg);
  c.handshake();
  c.server("220 mx\r\n");
  c.client("STARTTLS\r\n");
  // Not yet: the next client bytes must be a TLS record (STARTTLS injection).
  auto o = c.server("220 go ahead\r\n");
  CHECK(o.verdict.mark == 0);
  auto tls = c.client("\x16\x03\x01\x02\x00");
  CHECK(tls.verdict.kind == VerdictKind::kAccept);
  CHECK(tls.verdict.mark == 0x100000);
  CHECK(c.pipeline.counters().get(core::Counter::starttls) == 1);
}

TEST_CASE("a flow is counted closed once, whatever arrives after") {
  Conversation c("modern");
  c.handshake();
  c.send(
      c.base(true).seq(c.client_seq).ack(c.server_seq).flags(net::kTcpFin | net::kTcpAck).build());
  c.send(c.base(false)
             .seq(c.server_seq)
             .ack(c.client_seq + 1)
             .flags(net::kTcpFin | net::kTcpAck)
             .build());
  CHECK(c.pipeline.counters().get(core::Counter::flows_closed) == 1);
  // A retransmitted FIN and a stray RST change nothing.
  c.send(c.base(false)
             .seq(c.server_seq)
             .ack(c.client_seq + 1)
             .flags(net::kTcpFin | net::kTcpAck)
             .build());
  c.send(c.base(true).seq(c.client_seq + 1).flags(net::kTcpRst).build());
  CHECK(c.pipeline.counters().get(core::Counter::flows_closed) == 1);
}

TEST_CASE("a duplicate SYN after the handshake does not reset the flow") {
  Conversation c("pix-mailguard");
  c.handshake();
  // The network duplicated the client's first SYN; its copy arrives late.
  c.send(c.base(true).seq(c.client_seq - 1).flags(net::kTcpSyn).build());
  auto o = c.server("220 mx.example.org\r\n");
  CHECK(o.verdict.kind == VerdictKind::kAcceptModified);
  CHECK(payload(o.packet) == "220 **************\r\n");
  CHECK(c.pipeline.counters().get(core::Counter::flows_created) == 1);
}

TEST_CASE("a SYN with a new ISN on a closed flow's 4-tuple starts a new flow") {
  Conversation c("pix-mailguard");
  c.handshake();
  c.send(c.base(true).seq(c.client_seq).flags(net::kTcpRst).build());
  c.client_seq += 100000;
  c.server_seq += 100000;
  c.handshake();
  auto o = c.server("220 mx\r\n");
  CHECK(o.verdict.kind == VerdictKind::kAcceptModified);
  CHECK(c.pipeline.counters().get(core::Counter::flows_created) == 2);
}

TEST_CASE("drop-connection drops the flow silently; decisions carry the connection") {
  auto profile = std::make_shared<policy::Profile>(*policy::builtin_profile("modern"));
  profile->verbs[static_cast<size_t>(smtp::Verb::kXlink2state)] = policy::CommandAction::kDrop;
  Conversation c(core::PipelineConfig{policy::single_policy(profile)});
  c.handshake();
  c.server("220 mx.example.org ESMTP\r\n");
  auto o = c.client("X-LINK2STATE LAST CHUNK=x\r\n");
  CHECK(o.verdict.kind == VerdictKind::kDrop);
  CHECK(c.released.injected.empty());  // no RST either way
  REQUIRE(c.released.decisions.size() == 2);
  const core::Decision& d = c.released.decisions[0];
  CHECK(policy::info(d.event).name == "command_dropped");
  CHECK(d.action == "drop-connection");
  CHECK(d.subject == "X-LINK2STATE");
  CHECK(d.client.to_string() == "198.18.1.1");
  CHECK(d.server.to_string() == "198.18.2.1");
  CHECK(d.client_port == 40000);
  CHECK(d.server_port == 25);
  CHECK(d.ends_connection);  // the event log's warning level reads it
  CHECK(policy::info(c.released.decisions[1].event).name == "flow_reset");
  CHECK(c.released.decisions[1].action == "drop-connection");
  CHECK(c.released.decisions[1].ends_connection);
  // Everything after is dropped, and no straggler gets a RST.
  o = c.client("QUIT\r\n");
  CHECK(o.verdict.kind == VerdictKind::kDrop);
  CHECK(c.released.injected.empty());
  o = c.server("250 ok\r\n");
  CHECK(o.verdict.kind == VerdictKind::kDrop);
  CHECK(c.released.injected.empty());
  CHECK(c.pipeline.counters().get(core::Counter::flows_dropped) == 1);
  CHECK(c.pipeline.counters().get(core::Counter::flows_reset) == 0);
}

TEST_CASE("a reload changes the profile of new flows only") {
  Conversation c("modern");
  c.handshake();
  c.pipeline.set_policies(policy::single_policy(policy::builtin_profile("pix-mailguard")));
  // The flow under way keeps modern: its banner passes.
  auto o = c.server("220 mx.example.org ESMTP\r\n");
  CHECK(o.verdict.kind == VerdictKind::kAccept);
  // A new connection (another client port) gets the new profile.
  Conversation::Out syn =
      c.send(c.base(true).ports(40001, 25).seq(5000).flags(net::kTcpSyn).build());
  CHECK(syn.verdict.kind == VerdictKind::kAccept);
  c.send(c.base(false)
             .ports(25, 40001)
             .seq(9000)
             .ack(5001)
             .flags(net::kTcpSyn | net::kTcpAck)
             .build());
  c.send(c.base(true).ports(40001, 25).seq(5001).ack(9001).flags(net::kTcpAck).build());
  o = c.send(c.base(false)
                 .ports(25, 40001)
                 .seq(9001)
                 .ack(5001)
                 .flags(net::kTcpAck)
                 .payload("220 mx.example.org ESMTP\r\n")
                 .build());
  CHECK(o.verdict.kind == VerdictKind::kAcceptModified);
  CHECK(payload(o.packet) == "220 " + std::string(20, '*') + "\r\n");
}

TEST_CASE("summarize_flows copies each flow's endpoints, state, bytes, holds and deltas") {
  std::vector<core::FlowSummary> flows;
  SECTION("a held partial command") {
    Conversation c("pix-mailguard");
    c.handshake();
    c.server("220 mx\r\n");
    REQUIRE(c.client("HEL").verdict.kind == VerdictKind::kHold);
    CHECK(c.pipeline.summarize_flows(flows, 10) == 1);
    REQUIRE(flows.size() == 1);
    const core::FlowSummary& f = flows[0];
    CHECK(f.roles_known);
    CHECK(f.client.to_string() == "198.18.1.1");
    CHECK(f.client_port == 40000);
    CHECK(f.server.to_string() == "198.18.2.1");
    CHECK(f.server_port == 25);
    CHECK(f.state == "established");
    CHECK(f.profile == "pix-mailguard");
    CHECK(f.bytes_c2s == 3);
    CHECK(f.bytes_s2c == 8);
    CHECK_FALSE(f.mapped);
    CHECK(f.delta_c2s == 0);
    CHECK(f.delta_s2c == 0);
    CHECK(f.held_packets == 1);
    CHECK(f.held_bytes > 3);
    CHECK_FALSE(f.reset);
    CHECK(f.expires > c.now);
    // The cap: the count is still the table's.
    flows.clear();
    CHECK(c.pipeline.summarize_flows(flows, 0) == 1);
    CHECK(flows.empty());
  }
  SECTION("a command answered by the gateway maps the connection") {
    auto profile = std::make_shared<policy::Profile>(*policy::builtin_profile("modern"));
    profile->verbs[static_cast<size_t>(smtp::Verb::kVrfy)] = policy::CommandAction::kAnswer;
    Conversation c(core::PipelineConfig{policy::single_policy(profile)});
    c.handshake();
    c.server("220 mx\r\n");
    c.client("VRFY a\r\n");
    CHECK(c.pipeline.summarize_flows(flows, 10) == 1);
    REQUIRE(flows.size() == 1);
    CHECK(flows[0].mapped);
    CHECK(flows[0].delta_c2s == -8);  // the command is gone from the server's stream
    CHECK(flows[0].delta_s2c == static_cast<int64_t>(profile->answer_reply.size() + 2));
    CHECK(flows[0].owed_replies == 1);
  }
  SECTION("a flow picked up mid-stream has no known roles") {
    Conversation c("modern");
    c.server("220 mx.example.org\r\n");
    CHECK(c.pipeline.summarize_flows(flows, 10) == 1);
    REQUIRE(flows.size() == 1);
    CHECK_FALSE(flows[0].roles_known);
    CHECK(flows[0].state == "passthrough");
    CHECK(flows[0].profile.empty());
    CHECK(flows[0].bytes_c2s == 0);
  }
}
