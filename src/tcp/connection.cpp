#include "tcp/connection.hpp"

#include <algorithm>

#include "util/seq.hpp"

namespace sg::tcp {

void Handshake::on_syn(uint32_t isn) {
  if (complete_) return;
  // A retransmitted SYN may carry a new ISN (a client that gave up and tried again): the
  // SYN-ACKs to the old one no longer count.
  if (isn != client_isn_) count_ = 0;
  client_isn_ = isn;
}

bool Handshake::on_synack(uint32_t isn, uint32_t ack) {
  if (complete_ || ack != client_isn_ + 1) return false;
  for (size_t i = 0; i < count_; ++i)
    if (candidates_[i] == isn) {
      newest_ = i;
      return true;
    }
  // Beyond kCandidates the oldest goes: a server does not answer one SYN with that many ISNs.
  newest_ = count_ < kCandidates ? count_++ : (newest_ + 1) % kCandidates;
  candidates_[newest_] = isn;
  return true;
}

std::optional<uint32_t> Handshake::on_client_ack(uint32_t ack) {
  if (complete_) return std::nullopt;
  for (size_t i = 0; i < count_; ++i)
    if (candidates_[i] + 1 == ack) {
      complete_ = true;
      server_isn_ = candidates_[i];
      return server_isn_;
    }
  return std::nullopt;
}

std::string_view state_name(ConnectionState s) {
  switch (s) {
    case ConnectionState::kSynSent:
      return "syn-sent";
    case ConnectionState::kEstablished:
      return "established";
    case ConnectionState::kClosing:
      return "closing";
    case ConnectionState::kClosed:
      return "closed";
    case ConnectionState::kPassthrough:
      return "passthrough";
  }
  return "unknown";
}

void Connection::open(uint32_t client_isn, uint32_t in_interface) {
  handshake_.on_syn(client_isn);
  interfaces_.bind(kClientSide, in_interface);
  sides_[kClientSide].space = SeqSpace(client_isn);
  state_ = ConnectionState::kSynSent;
}

bool Connection::close() {
  if (state_ == ConnectionState::kClosed) return false;
  state_ = ConnectionState::kClosed;
  return true;
}

Connection::HandshakeStep Connection::on_handshake(size_t side, const net::PacketView& v,
                                                   uint32_t in_interface) {
  const uint8_t syn_ack = v.flags & (net::kTcpSyn | net::kTcpAck | net::kTcpRst);
  if (side == kClientSide && syn_ack == net::kTcpSyn && state_ == ConnectionState::kSynSent) {
    handshake_.on_syn(v.seq);  // a retransmitted SYN
    sides_[side].space = SeqSpace(v.seq);
    return {};
  }
  if (side == kServerSide && syn_ack == (net::kTcpSyn | net::kTcpAck)) {
    // Every SYN-ACK answering the client's SYN is a candidate until the client confirms one;
    // after that a SYN-ACK changes nothing (the client answers it with an ACK).
    const bool first = !handshake_.has_candidate();
    const uint32_t before = first ? 0 : handshake_.server_isn();
    if (!handshake_.on_synack(v.seq, v.ack)) return {};
    interfaces_.bind(side, in_interface);
    sides_[side].space = SeqSpace(handshake_.server_isn());
    return {true, !first && before != v.seq};
  }
  if (side == kClientSide && (v.flags & net::kTcpAck) && !(v.flags & net::kTcpSyn) &&
      !handshake_.complete()) {
    if (const auto isn = handshake_.on_client_ack(v.ack))
      sides_[kServerSide].space = SeqSpace(*isn);
  }
  return {};
}

void Connection::note_sender(size_t side, const net::PacketView& v,
                             const std::optional<net::TcpTimestamps>& ts) {
  SenderState& s = sides_[side];
  const bool older_ts = ts && s.timestamps && seq_before(ts->value, s.timestamps->value);
  const bool older_ack = (v.flags & net::kTcpAck) && s.ack_seen && seq_before(v.ack, s.last_ack);
  if (older_ts || older_ack) return;
  s.window = v.window;
  if (ts) s.timestamps = ts;
}

void Connection::note_ack(size_t side, uint32_t ack) {
  SenderState& s = sides_[side];
  if (!s.ack_seen || seq_after(ack, s.last_ack)) s.last_ack = ack;
  s.ack_seen = true;
}

bool Connection::acks_unsent(size_t side, uint32_t ack, uint64_t near, uint64_t sent) const {
  const SenderState& reverse = sides_[1 - side];
  if (!handshake_.complete() || !reverse.space.known()) return false;
  return reverse.space.signed_offset(ack, near) > static_cast<int64_t>(sent) + 1;
}

CloseStep Connection::on_close_flags(size_t side, const net::PacketView& v, StreamPosition pos,
                                     bool dropped) {
  // Closing is counted once, on the transition, and never undone by a late FIN.
  if (state_ == ConnectionState::kClosed) return CloseStep::kNone;
  const SenderState& s = sides_[side];
  if (v.flags & net::kTcpRst) {
    bool exact = pos.kind == StreamPosition::kOver;
    if (pos.kind == StreamPosition::kNotInspected) {
      // Before the handshake: the answer to the SYN (its ack), or the client giving up.
      exact = side == kServerSide ? (v.flags & net::kTcpAck) && v.ack == handshake_.client_isn() + 1
                                  : v.seq == handshake_.client_isn() + 1;
    } else if (pos.kind == StreamPosition::kAt) {
      exact = rst_exact(v.seq, s.space.seq(pos.frontier));
    }
    // In the window but not exact, the receiver answers with a challenge ACK and keeps the
    // connection (RFC 5961); out of the window it ignores it.
    if (!exact) return CloseStep::kRstIgnored;
    state_ = ConnectionState::kClosed;
    return CloseStep::kClosed;
  }
  if (!(v.flags & net::kTcpFin) || s.fin) return CloseStep::kNone;
  const bool placed =
      pos.kind == StreamPosition::kOver ||
      (pos.kind == StreamPosition::kAt && !dropped &&
       tcp::fin_in_place(s.space.offset(v.seq, pos.frontier), v.payload_len, pos.frontier));
  if (!placed) return CloseStep::kFinIgnored;
  return fin_in_place(side);
}

CloseStep Connection::fin_in_place(size_t side) {
  sides_[side].fin = true;
  if (!sides_[0].fin || !sides_[1].fin) {
    state_ = ConnectionState::kClosing;
    return CloseStep::kClosing;
  }
  state_ = ConnectionState::kClosed;
  return CloseStep::kClosed;
}

void Connection::note_forwarded(size_t side, uint64_t end) {
  sides_[side].sent_end = std::max(sides_[side].sent_end, end);
}

}  // namespace sg::tcp
