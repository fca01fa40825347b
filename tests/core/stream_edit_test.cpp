// Length-changing rewrites end to end through the pipeline: two simulated TCP endpoints that
// acknowledge exactly what they received, the pipeline between them. Each side checks that
// every segment it gets is in order in ITS sequence space, and the streams each side received
// are compared with what the policy says they must be - for every cut of the dialogue.
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/pipeline.hpp"
#include "net/checksum.hpp"
#include "net/forge.hpp"
#include "net/packet.hpp"
#include "policy/profile.hpp"
#include "support/packet_builder.hpp"

using namespace sg;
using core::VerdictKind;
using smtp::Verb;

namespace {

std::shared_ptr<const policy::Profile> strip_and_answer() {
  auto p = std::make_shared<policy::Profile>(*policy::builtin_profile("modern"));
  p->keywords[static_cast<size_t>(smtp::EhloKeyword::kAuth)] = policy::KeywordAction::kStrip;
  p->keywords[static_cast<size_t>(smtp::EhloKeyword::kChunking)] = policy::KeywordAction::kStrip;
  p->verbs[static_cast<size_t>(Verb::kVrfy)] = policy::CommandAction::kAnswer;
  p->verbs[static_cast<size_t>(Verb::kExpn)] = policy::CommandAction::kReset;
  p->answer_reply = "550 5.7.1 no";
  return p;
}

// One endpoint: what it sent (its own numbers) and what it received in order.
struct Endpoint {
  uint32_t isn = 0;
  uint32_t snd_nxt = 0;  // next sequence number it sends
  uint32_t rcv_nxt = 0;  // next sequence number it expects
  std::string received;
  bool got_rst = false;
  std::vector<uint32_t> acks_seen;  // ack fields of segments it accepted
  // Segments without data numbered below rcv_nxt: Linux drops them (ack unprocessed) and
  // answers with an ACK - right for a keepalive, a stall for an ordinary ACK.
  int old_empty_segments = 0;
};

struct Link {
  explicit Link(std::shared_ptr<const policy::Profile> profile, uint32_t client_isn = 0xfffffff0u,
                uint32_t server_isn = 7000)
      : pipeline(core::PipelineConfig{policy::single_policy(std::move(profile))}) {
    client.isn = client_isn;
    server.isn = server_isn;
    client.snd_nxt = client_isn;
    server.snd_nxt = server_isn;
    // Handshake.
    transmit(true, segment(true, net::kTcpSyn, client.snd_nxt, 0, ""));
    client.snd_nxt++;
    server.rcv_nxt = client.snd_nxt;
    transmit(false,
             segment(false, net::kTcpSyn | net::kTcpAck, server.snd_nxt, server.rcv_nxt, ""));
    server.snd_nxt++;
    client.rcv_nxt = server.snd_nxt;
    transmit(true, segment(true, net::kTcpAck, client.snd_nxt, client.rcv_nxt, ""));
  }

  core::Pipeline pipeline;
  Endpoint client, server;
  core::Output out;
  Timestamp now{};
  uint32_t next_id = 1;
  std::map<uint32_t, bool> held;  // packet id -> from client
  std::vector<std::string> errors;
  uint64_t injected = 0;

  std::vector<uint8_t> segment(bool from_client, uint8_t flags, uint32_t seq, uint32_t ack,
                               std::string_view payload) const {
    test::PacketBuilder b;
    from_client ? b.v4("198.18.1.1", "198.18.2.1").ports(40000, 25)
                : b.v4("198.18.2.1", "198.18.1.1").ports(25, 40000);
    return b.seq(seq).ack(ack).flags(flags).payload(payload).timestamps(100, 200).build();
  }

  // Delivers a packet that left the gateway to its receiver.
  void deliver(std::span<const uint8_t> bytes) {
    const auto v = net::parse_packet(bytes);
    if (!v) {
      errors.push_back("unparsable packet left the gateway");
      return;
    }
    if (!net::tcp_checksum_ok(bytes, *v)) errors.push_back("bad TCP checksum");
    const bool to_client = v->dst_port == 40000;
    Endpoint& r = to_client ? client : server;
    if (v->flags & net::kTcpRst) {
      if (v->seq == r.rcv_nxt) r.got_rst = true;
      return;
    }
    const auto d = static_cast<int32_t>(v->seq - r.rcv_nxt);
    if (v->payload_len == 0 && !(v->flags & net::kTcpSyn) && d < 0) {
      ++r.old_empty_segments;
      return;
    }
    if (v->flags & net::kTcpAck) r.acks_seen.push_back(v->ack);
    if (v->flags & net::kTcpSyn) return;
    if (v->payload_len == 0) return;
    const std::string data(reinterpret_cast<const char*>(bytes.data()) + v->payload_offset,
                           v->payload_len);
    if (d > 0) {
      errors.push_back("segment beyond the receiver's next byte (a hole)");
      return;
    }
    const auto old = static_cast<size_t>(-d);
    if (old >= data.size()) return;  // a duplicate
    r.received += data.substr(old);
    r.rcv_nxt += static_cast<uint32_t>(data.size() - old);
  }

  void drain_out() {
    for (const core::Release& rel : out.released) {
      held.erase(rel.packet_id);
      if (rel.kind != VerdictKind::kDrop) deliver(rel.bytes);
    }
    for (const core::Injection& inj : out.injected) {
      ++injected;
      deliver(inj.bytes);
    }
    out.clear();
  }

  void transmit(bool from_client, std::vector<uint8_t> pkt) {
    const uint32_t id = next_id++;
    out.clear();
    const core::PacketVerdict v = pipeline.process(id, pkt, false, now, out);
    std::vector<core::Injection> injections = std::move(out.injected);
    out.injected.clear();
    drain_out();
    switch (v.kind) {
      case VerdictKind::kAccept:
        deliver(pkt);
        break;
      case VerdictKind::kAcceptModified:
        deliver(v.bytes);
        break;
      case VerdictKind::kDrop:
        break;
      case VerdictKind::kHold:
        held[id] = from_client;
        break;
    }
    for (const core::Injection& inj : injections) {
      ++injected;
      deliver(inj.bytes);
    }
  }

  // Sends `text` from one side in pieces cut at `cuts` (offsets into text), acknowledging
  // everything that side has received.
  void send(bool from_client, std::string_view text, const std::vector<size_t>& cuts = {}) {
    Endpoint& s = from_client ? client : server;
    size_t at = 0;
    std::vector<size_t> ends = cuts;
    ends.push_back(text.size());
    for (size_t end : ends) {
      if (end <= at) continue;
      const std::string_view piece = text.substr(at, end - at);
      transmit(from_client,
               segment(from_client, net::kTcpAck | net::kTcpPsh, s.snd_nxt, s.rcv_nxt, piece));
      s.snd_nxt += static_cast<uint32_t>(piece.size());
      at = end;
    }
  }
  void ack(bool from_client) {
    Endpoint& s = from_client ? client : server;
    transmit(from_client, segment(from_client, net::kTcpAck, s.snd_nxt, s.rcv_nxt, ""));
  }
  void tick(Duration d) {
    now += d;
    out.clear();
    pipeline.on_timer(now, out);
    drain_out();
  }
};

const std::string kGreeting = "220 mx.example.org ESMTP\r\n";
const std::string kEhloReply =
    "250-mx.example.org\r\n"
    "250-PIPELINING\r\n"
    "250-AUTH PLAIN LOGIN\r\n"
    "250-8BITMIME\r\n"
    "250 CHUNKING\r\n";
const std::string kEhloSeen =
    "250-mx.example.org\r\n"
    "250-PIPELINING\r\n"
    "250 8BITMIME\r\n";
const std::string kBatch =
    "MAIL FROM:<a@example.org>\r\nVRFY x\r\nRCPT TO:<b@example.org>\r\nDATA\r\n";
const std::string kBatchSeen = "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n";
const std::string kBody = "Subject: t\r\n\r\nVRFY in a body is no command\r\n.\r\n";

// The whole dialogue; the server's EHLO reply and the client's batch are cut at `cuts`.
void run_dialogue(Link& l, const std::vector<size_t>& ehlo_cuts,
                  const std::vector<size_t>& batch_cuts) {
  l.send(false, kGreeting);
  l.send(true, "EHLO c.example.org\r\n");
  l.send(false, kEhloReply, ehlo_cuts);
  l.send(true, kBatch, batch_cuts);
  l.send(false, "250 ok\r\n250 ok\r\n354 go\r\n");
  l.send(true, kBody);
  l.send(false, "250 queued\r\n");
  l.send(true, "QUIT\r\n");
  l.send(false, "221 bye\r\n");
  l.ack(true);
  l.ack(false);
}

void check_dialogue(const Link& l) {
  for (const std::string& e : l.errors) FAIL_CHECK(e);
  CHECK(l.server.received == "EHLO c.example.org\r\n" + kBatchSeen + kBody + "QUIT\r\n");
  CHECK(l.client.received == kGreeting + kEhloSeen +
                                 "250 ok\r\n550 5.7.1 no\r\n250 ok\r\n354 go\r\n250 queued\r\n"
                                 "221 bye\r\n");
  // Each side's last ack, mapped back, acknowledges exactly what it sent: nothing lost,
  // nothing claimed that was not received.
  REQUIRE(!l.client.acks_seen.empty());
  REQUIRE(!l.server.acks_seen.empty());
  CHECK(l.client.acks_seen.back() == l.client.snd_nxt);
  CHECK(l.server.acks_seen.back() == l.server.snd_nxt);
  CHECK(l.client.old_empty_segments == 0);
  CHECK(l.server.old_empty_segments == 0);
  CHECK_FALSE(l.pipeline.has_held_packets());
}

}  // namespace

TEST_CASE("strip and answer: both streams as the policy says, acks mapped back exactly") {
  Link l(strip_and_answer());
  run_dialogue(l, {}, {});
  check_dialogue(l);
  CHECK(l.injected == 0);  // the answer rode on the server's own segment
  CHECK(l.pipeline.counters().get(core::Counter::edit_keyword_stripped) == 2);
  CHECK(l.pipeline.counters().get(core::Counter::edit_command_answered) == 1);
}

TEST_CASE("the EHLO reply cut at every byte gives the same streams") {
  for (size_t cut = 1; cut < kEhloReply.size(); ++cut) {
    INFO("EHLO reply cut at " << cut);
    Link l(strip_and_answer());
    run_dialogue(l, {cut}, {});
    check_dialogue(l);
  }
}

TEST_CASE("the pipelined batch cut at every byte gives the same streams") {
  for (size_t cut = 1; cut < kBatch.size(); ++cut) {
    INFO("batch cut at " << cut);
    Link l(strip_and_answer());
    run_dialogue(l, {}, {cut});
    check_dialogue(l);
  }
}

TEST_CASE("random multi-cuts of both, seeded") {
  std::mt19937 rng(2026);
  for (int round = 0; round < 200; ++round) {
    std::vector<size_t> ec, bc;
    for (size_t i = 1; i < kEhloReply.size(); ++i)
      if (rng() % 6 == 0) ec.push_back(i);
    for (size_t i = 1; i < kBatch.size(); ++i)
      if (rng() % 6 == 0) bc.push_back(i);
    INFO("round " << round);
    Link l(strip_and_answer(), static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng()));
    run_dialogue(l, ec, bc);
    check_dialogue(l);
  }
}

TEST_CASE("an answer with nothing after it is sent by the gateway and retransmitted until acked") {
  Link l(strip_and_answer());
  l.send(false, kGreeting);
  l.send(true, "HELO c\r\n");
  l.send(false, "250 mx\r\n");
  const uint32_t client_next = l.client.snd_nxt + 8;
  l.send(true, "VRFY x\r\n");
  CHECK(l.injected == 1);
  CHECK(l.client.received == kGreeting + "250 mx\r\n550 5.7.1 no\r\n");
  // The gateway's segment acknowledged the removed command.
  CHECK(l.client.acks_seen.back() == client_next);
  // A pure ACK from the server at the answer's position lands after the inserted bytes.
  l.ack(false);
  CHECK(l.client.old_empty_segments == 0);
  CHECK(l.client.acks_seen.back() == client_next);
  CHECK(l.server.received == "HELO c\r\n");
  // Lost on the way (the client does not ack): it comes again after the RTO, then backs off.
  l.client.received.clear();
  l.client.rcv_nxt -= 14;  // pretend the client never got it
  l.tick(milliseconds(300));
  CHECK(l.injected == 2);
  CHECK(l.client.received == "550 5.7.1 no\r\n");
  l.ack(true);  // now acknowledged: no more retransmissions
  l.tick(seconds(10));
  CHECK(l.injected == 2);
  // The rest of the dialogue maps across the inserted and removed bytes.
  l.send(true, "QUIT\r\n");
  l.send(false, "221 bye\r\n");
  l.ack(true);
  CHECK(l.server.received == "HELO c\r\nQUIT\r\n");
  CHECK(l.client.received == "550 5.7.1 no\r\n221 bye\r\n");
  CHECK(l.server.acks_seen.back() == l.server.snd_nxt);
  for (const std::string& e : l.errors) FAIL_CHECK(e);
}

TEST_CASE("a retransmission, coalesced differently, gets the bytes the receiver already has") {
  Link l(strip_and_answer());
  l.send(false, kGreeting);
  l.send(true, "EHLO c.example.org\r\n");
  const uint32_t seq = l.server.snd_nxt;
  l.send(false, kEhloReply, {10, 30, 50});
  const std::string first = l.client.received;
  // The server did not see the acks: it retransmits the whole reply in one segment, then the
  // tail from inside the stripped AUTH line.
  l.transmit(false, l.segment(false, net::kTcpAck, seq, l.server.rcv_nxt, kEhloReply));
  l.transmit(false,
             l.segment(false, net::kTcpAck, seq + 40, l.server.rcv_nxt, kEhloReply.substr(40)));
  CHECK(l.client.received == first);
  CHECK(l.client.received == kGreeting + kEhloSeen);
  for (const std::string& e : l.errors) FAIL_CHECK(e);
}

TEST_CASE("retransmissions below the acknowledged point are trimmed, never rendered stale") {
  Link l(strip_and_answer());
  l.send(false, kGreeting);
  l.send(true, "EHLO c.example.org\r\n");
  const uint32_t seq = l.server.snd_nxt;
  l.send(false, kEhloReply);
  l.ack(true);  // the client acknowledges the shortened reply: its edits are forgotten
  const auto before = l.pipeline.counters().get(core::Counter::segments_trimmed);
  l.transmit(false, l.segment(false, net::kTcpAck, seq, l.server.rcv_nxt, kEhloReply));
  CHECK(l.pipeline.counters().get(core::Counter::segments_trimmed) == before + 1);
  CHECK(l.client.received == kGreeting + kEhloSeen);
  // Nothing of it was new: it arrives as an empty segment just below the client's next byte,
  // which the client answers with an ACK, as it would have answered the duplicate.
  CHECK(l.client.old_empty_segments == 1);
  for (const std::string& e : l.errors) FAIL_CHECK(e);
}

TEST_CASE("SACK blocks spanning a deletion map to original numbers") {
  Link l(strip_and_answer());
  l.send(false, kGreeting);
  l.send(true, "EHLO c.example.org\r\n");
  const uint32_t rw = l.client.rcv_nxt;  // the rewritten EHLO reply starts here for the client
  l.send(false, kEhloReply);
  // The client SACKs the rewritten [rw + 10, rw + 40): 40 is inside "250 8BITMIME" which
  // follows the deleted AUTH line (original 36..58), so the right edge maps +22.
  auto pkt = test::PacketBuilder()
                 .v4("198.18.1.1", "198.18.2.1")
                 .ports(40000, 25)
                 .seq(l.client.snd_nxt)
                 .ack(rw)
                 .flags(net::kTcpAck)
                 .sack({{rw + 10, rw + 40}})
                 .build();
  core::Output out;
  const core::PacketVerdict verdict = l.pipeline.process(999, pkt, false, l.now, out);
  REQUIRE(verdict.kind == VerdictKind::kAcceptModified);
  const auto mv = net::parse_packet(verdict.bytes);
  REQUIRE(mv);
  REQUIRE(mv->sack_count == 1);
  const net::SackBlock b = net::read_sack(verdict.bytes, *mv, 0);
  const uint32_t orig = l.server.snd_nxt - static_cast<uint32_t>(kEhloReply.size());
  CHECK(mv->ack == orig);  // before the deletion: unchanged
  CHECK(b.left == orig + 10);
  CHECK(b.right == orig + 40 + 22);
}

TEST_CASE("a reset command resets both ends with numbers each accepts") {
  Link l(strip_and_answer());
  l.send(false, kGreeting);
  l.send(true, "EHLO c.example.org\r\n");
  l.send(false, kEhloReply);
  l.send(true, "EXPN staff\r\n");
  CHECK(l.client.got_rst);
  CHECK(l.server.got_rst);
  CHECK(l.server.received == "EHLO c.example.org\r\n");
  CHECK(l.pipeline.counters().get(core::Counter::flows_reset) == 1);
  // Whatever comes later is dropped; a straggler is answered with a RST it accepts.
  l.client.got_rst = false;
  l.send(true, "QUIT\r\n");
  CHECK(l.client.got_rst);
  CHECK(l.server.received == "EHLO c.example.org\r\n");
  for (const std::string& e : l.errors) FAIL_CHECK(e);
}

TEST_CASE("a stale duplicate from the server does not roll back the answer's ack or timestamps") {
  Link l(strip_and_answer());
  l.send(false, kGreeting);
  const uint32_t greeting_seq = l.server.isn + 1;
  const uint32_t stale_ack = l.server.rcv_nxt;
  l.send(true, "HELO c\r\n");
  // The server's reply carries newer timestamps than the greeting did.
  test::PacketBuilder b;
  auto reply = b.v4("198.18.2.1", "198.18.1.1")
                   .ports(25, 40000)
                   .seq(l.server.snd_nxt)
                   .ack(l.server.rcv_nxt)
                   .flags(net::kTcpAck | net::kTcpPsh)
                   .timestamps(500, 600)
                   .payload("250 mx\r\n")
                   .build();
  l.transmit(false, reply);
  l.server.snd_nxt += 8;
  // A duplicate of the greeting (old ack, old timestamps) arrives late.
  auto stale = test::PacketBuilder()
                   .v4("198.18.2.1", "198.18.1.1")
                   .ports(25, 40000)
                   .seq(greeting_seq)
                   .ack(stale_ack)
                   .flags(net::kTcpAck | net::kTcpPsh)
                   .timestamps(100, 200)
                   .payload(kGreeting)
                   .build();
  l.transmit(false, stale);
  const uint32_t client_next = l.client.snd_nxt + 8;
  core::Output out;
  auto vrfy = l.segment(true, net::kTcpAck | net::kTcpPsh, l.client.snd_nxt, l.client.rcv_nxt,
                        "VRFY x\r\n");
  l.pipeline.process(500, vrfy, false, l.now, out);
  REQUIRE(out.injected.size() == 1);
  const auto v = net::parse_packet(out.injected[0].bytes);
  REQUIRE(v);
  CHECK(v->ack == client_next);  // acknowledges the removed command
  const auto ts = net::read_timestamps(out.injected[0].bytes, *v);
  REQUIRE(ts);
  CHECK(ts->value == 500);  // the newest the client has seen, never older
}

TEST_CASE("a retransmission whose bytes differ from the inspected ones is dropped") {
  Link l(strip_and_answer());
  l.send(false, kGreeting);
  const uint32_t seq = l.client.snd_nxt;
  l.send(true, "NOOP\r\n");
  // Same numbers, other bytes: had the first copy been lost after the gateway, the server would
  // read a command nobody inspected.
  core::Output out;
  auto forged = l.segment(true, net::kTcpAck | net::kTcpPsh, seq, l.client.rcv_nxt, "EXPN\r\n");
  CHECK(l.pipeline.process(900, forged, false, l.now, out).kind == VerdictKind::kDrop);
  CHECK(l.pipeline.counters().get(core::Counter::segments_overlap_conflict) == 1);
  // An honest retransmission of the same bytes, and one that adds new bytes, pass.
  auto same = l.segment(true, net::kTcpAck | net::kTcpPsh, seq, l.client.rcv_nxt, "NOOP\r\n");
  CHECK(l.pipeline.process(901, same, false, l.now, out).kind != VerdictKind::kDrop);
  l.send(true, "QUIT\r\n");
  CHECK(l.server.received == "NOOP\r\nQUIT\r\n");
  // Held beyond a hole, then found to overlap with different bytes: dropped too.
  const uint32_t next = l.client.snd_nxt;
  auto beyond = l.segment(true, net::kTcpAck, next + 2, l.client.rcv_nxt, "LP\r\n");
  CHECK(l.pipeline.process(902, beyond, false, l.now, out).kind == VerdictKind::kHold);
  out.clear();
  // The hole fills with bytes that disagree with the held segment where they overlap.
  auto filler = l.segment(true, net::kTcpAck, next, l.client.rcv_nxt, "HEXX");
  CHECK(l.pipeline.process(903, filler, false, l.now, out).kind != VerdictKind::kDrop);
  REQUIRE(out.released.size() == 1);
  CHECK(out.released[0].packet_id == 902);
  CHECK(out.released[0].kind == VerdictKind::kDrop);
  CHECK(l.pipeline.counters().get(core::Counter::segments_overlap_conflict) == 2);
  for (const std::string& e : l.errors) FAIL_CHECK(e);
}
