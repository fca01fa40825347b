#include "tcp/connection.hpp"

#include <catch2/catch.hpp>

using namespace sg;

TEST_CASE("the handshake completes when the client confirms a SYN-ACK's ISN") {
  tcp::Handshake h;
  h.on_syn(1000);
  CHECK_FALSE(h.has_candidate());
  CHECK(h.on_synack(5000, 1001));
  CHECK(h.server_isn() == 5000);
  CHECK_FALSE(h.complete());
  CHECK_FALSE(h.on_client_ack(4000));  // acknowledges nothing the server sent
  CHECK_FALSE(h.complete());
  CHECK(h.on_client_ack(5001) == 5000u);
  CHECK(h.complete());
  // Once complete, no SYN-ACK and no SYN changes it.
  CHECK_FALSE(h.on_synack(7000, 1001));
  h.on_syn(2000);
  CHECK(h.client_isn() == 1000);
  CHECK(h.server_isn() == 5000);
}

TEST_CASE("a lost SYN-ACK answered later with a new ISN: the one the client confirms wins") {
  // First ISN A, then (the client's SYN retransmitted) ISN B.
  SECTION("the client took the newer") {
    tcp::Handshake h;
    h.on_syn(1000);
    CHECK(h.on_synack(5000, 1001));
    CHECK(h.on_synack(9000, 1001));
    CHECK(h.server_isn() == 9000);
    CHECK(h.on_client_ack(9001) == 9000u);
  }
  SECTION("the client took the older (the newer was a late copy)") {
    tcp::Handshake h;
    h.on_syn(1000);
    CHECK(h.on_synack(5000, 1001));
    CHECK(h.on_synack(9000, 1001));
    CHECK(h.on_client_ack(5001) == 5000u);
    CHECK(h.server_isn() == 5000);
  }
}

TEST_CASE("a SYN-ACK that does not answer the client's SYN is no candidate") {
  tcp::Handshake h;
  h.on_syn(1000);
  CHECK_FALSE(h.on_synack(5000, 1002));
  CHECK_FALSE(h.has_candidate());
  CHECK_FALSE(h.on_client_ack(5001));
}

TEST_CASE("a SYN with a new ISN before completion drops the old candidates") {
  tcp::Handshake h;
  h.on_syn(1000);
  CHECK(h.on_synack(5000, 1001));
  h.on_syn(3000);
  CHECK_FALSE(h.has_candidate());
  CHECK_FALSE(h.on_synack(6000, 1001));  // answers the old SYN
  CHECK(h.on_synack(6000, 3001));
  CHECK(h.on_client_ack(6001) == 6000u);
}

TEST_CASE("candidates are bounded; the oldest goes") {
  tcp::Handshake h;
  h.on_syn(0xffffffffu);  // ISN + 1 wraps to 0
  for (uint32_t i = 0; i < tcp::Handshake::kCandidates + 2; ++i) CHECK(h.on_synack(100 * i, 0));
  CHECK_FALSE(h.on_client_ack(1));      // candidate 0 was overwritten
  CHECK(h.on_client_ack(501) == 500u);  // the newest
}

TEST_CASE("RST only at the exact next sequence number, FIN only at its place") {
  CHECK(tcp::rst_exact(100, 100));
  CHECK_FALSE(tcp::rst_exact(101, 100));
  CHECK_FALSE(tcp::rst_exact(99, 100));
  CHECK(tcp::fin_in_place(10, 5, 15));
  CHECK_FALSE(tcp::fin_in_place(10, 5, 20));  // a hole behind it, or far ahead
}

TEST_CASE("each direction is bound to its first interface; 0 is never bound nor refused") {
  tcp::InterfaceBinding b;
  b.bind(tcp::kClientSide, 3);
  b.bind(tcp::kServerSide, 0);
  CHECK(b.allows(tcp::kClientSide, 3));
  CHECK_FALSE(b.allows(tcp::kClientSide, 4));
  CHECK(b.allows(tcp::kClientSide, 0));
  CHECK(b.allows(tcp::kServerSide, 7));  // not bound yet
  b.bind(tcp::kServerSide, 4);
  b.bind(tcp::kServerSide, 5);  // the first one stays
  CHECK(b.bound(tcp::kServerSide) == 4);
  CHECK_FALSE(b.allows(tcp::kServerSide, 3));
}

TEST_CASE("a side is never bound to the other side's interface") {
  // A SYN-ACK spoofed on the client's interface, ahead of the real one: it binds nothing, the
  // real one binds the server's side, and later spoofs from the client's side are refused.
  tcp::InterfaceBinding b;
  b.bind(tcp::kClientSide, 3);
  b.bind(tcp::kServerSide, 3);
  CHECK(b.bound(tcp::kServerSide) == 0);
  b.bind(tcp::kServerSide, 4);
  CHECK(b.bound(tcp::kServerSide) == 4);
  CHECK_FALSE(b.allows(tcp::kServerSide, 3));
  // One-armed: both sides on one interface; the server's side stays unbound (nothing to tell).
  tcp::InterfaceBinding one;
  one.bind(tcp::kClientSide, 2);
  one.bind(tcp::kServerSide, 2);
  CHECK(one.bound(tcp::kServerSide) == 0);
  CHECK(one.allows(tcp::kServerSide, 2));
  CHECK(one.allows(tcp::kClientSide, 2));
}

namespace {

net::PacketView segment(uint8_t flags, uint32_t seq, uint32_t ack = 0, size_t payload = 0) {
  net::PacketView v;
  v.flags = flags;
  v.seq = seq;
  v.ack = ack;
  v.payload_len = payload;
  return v;
}

// SYN 1000, SYN-ACK 5000, ACK: both sequence spaces known.
tcp::Connection established() {
  tcp::Connection c;
  c.open(1000, 0);
  const auto step =
      c.on_handshake(tcp::kServerSide, segment(net::kTcpSyn | net::kTcpAck, 5000, 1001), 0);
  CHECK(step.synack_taken);
  c.establish();
  c.on_handshake(tcp::kClientSide, segment(net::kTcpAck, 1001, 5001), 0);
  CHECK(c.handshake().complete());
  return c;
}

constexpr tcp::StreamPosition at(uint64_t frontier) {
  return {tcp::StreamPosition::kAt, frontier};
}

}  // namespace

TEST_CASE("a connection: a RST closes it only at the next sequence number") {
  tcp::Connection c = established();
  const auto rst = net::kTcpRst | net::kTcpAck;
  CHECK(c.on_close_flags(tcp::kClientSide, segment(rst, 1001 + 5), at(10), false) ==
        tcp::CloseStep::kRstIgnored);
  CHECK(c.state() == tcp::ConnectionState::kEstablished);
  CHECK(c.on_close_flags(tcp::kClientSide, segment(rst, 1001 + 10), at(10), false) ==
        tcp::CloseStep::kClosed);
  CHECK(c.state() == tcp::ConnectionState::kClosed);
  CHECK_FALSE(c.close());  // closed already
}

TEST_CASE("a connection: a FIN counts at its place, closing it when both ways are done") {
  tcp::Connection c = established();
  const auto fin = net::kTcpFin | net::kTcpAck;
  // Beyond a hole, or not forwarded: ignored.
  CHECK(c.on_close_flags(tcp::kClientSide, segment(fin, 1001 + 12), at(10), false) ==
        tcp::CloseStep::kFinIgnored);
  CHECK(c.on_close_flags(tcp::kClientSide, segment(fin, 1001 + 10), at(10), true) ==
        tcp::CloseStep::kFinIgnored);
  // With its payload ending at the frontier.
  CHECK(c.on_close_flags(tcp::kClientSide, segment(fin, 1001 + 6, 0, 4), at(10), false) ==
        tcp::CloseStep::kClosing);
  CHECK(c.state() == tcp::ConnectionState::kClosing);
  CHECK(c.winding_down());
  CHECK(c.fin_in_place(tcp::kServerSide) == tcp::CloseStep::kClosed);
  CHECK(c.state() == tcp::ConnectionState::kClosed);
}

TEST_CASE("a connection keeps the sender's newest numbers, never a stale duplicate's") {
  tcp::Connection c = established();
  net::PacketView v = segment(net::kTcpAck, 5001, 1001 + 100);
  v.window = 500;
  c.note_ack(tcp::kServerSide, v.ack);
  c.note_sender(tcp::kServerSide, v, net::TcpTimestamps{10, 0});
  net::PacketView stale = segment(net::kTcpAck, 5001, 1001 + 50);  // an older ack
  stale.window = 100;
  c.note_sender(tcp::kServerSide, stale, net::TcpTimestamps{11, 0});
  c.note_ack(tcp::kServerSide, stale.ack);
  CHECK(c.sender(tcp::kServerSide).window == 500);
  CHECK(c.sender(tcp::kServerSide).last_ack == 1001 + 100);
  CHECK(c.sender(tcp::kServerSide).timestamps->value == 10);
}

TEST_CASE("a connection: an ack beyond what was sent is refused") {
  tcp::Connection c = established();
  // 20 bytes of the server's stream sent: their ack and the FIN's are fine, more is not.
  CHECK_FALSE(c.acks_unsent(tcp::kClientSide, 5001 + 21, 20, 20));
  CHECK(c.acks_unsent(tcp::kClientSide, 5001 + 22, 20, 20));
}
