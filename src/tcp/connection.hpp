#pragma once
// What the gateway believes of one connection's TCP state - changed only by packets that the
// endpoints would accept themselves, so that an attacker cannot move the gateway where the
// receiver does not go (DESIGN.md section 7).
//
// - The handshake completes when the client's ACK confirms one of the SYN-ACKs' ISNs: until
//   then every SYN-ACK from the server side is a candidate (a lost SYN-ACK answered later with
//   a new ISN must not stall the session).
// - A RST ends the connection only at exactly the next sequence number (RFC 5961 section 3:
//   Linux resets there and answers any other in-window RST with a challenge ACK), a FIN only at
//   its place in the stream.
// - Each direction is bound to the interface its handshake packet came in on.
// Pure: sequence numbers and flags in, judgements out. The pipeline owns the stream offsets.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "net/forge.hpp"
#include "net/packet.hpp"
#include "tcp/seq_space.hpp"

namespace sg::tcp {

// Index 0: client to server, 1: server to client (smtp::Dir's values).
inline constexpr size_t kClientSide = 0, kServerSide = 1;

class Handshake {
 public:
  // The client's SYN (or a retransmission of it, before any SYN-ACK was confirmed).
  void on_syn(uint32_t isn);
  // A SYN-ACK from the server side: a candidate when it acknowledges the client's SYN.
  // Returns whether it was taken (false: it does not answer this SYN, or the handshake is over).
  bool on_synack(uint32_t isn, uint32_t ack);
  // A client packet with ACK set: returns the server ISN it confirms the first time one does.
  std::optional<uint32_t> on_client_ack(uint32_t ack);

  uint32_t client_isn() const { return client_isn_; }
  // The server ISN in use: the confirmed one, else the newest candidate.
  uint32_t server_isn() const { return complete_ ? server_isn_ : candidates_[newest_]; }
  bool has_candidate() const { return count_ > 0; }
  bool complete() const { return complete_; }

  static constexpr size_t kCandidates = 4;

 private:
  uint32_t client_isn_ = 0;
  uint32_t server_isn_ = 0;
  std::array<uint32_t, kCandidates> candidates_{};
  size_t count_ = 0;   // candidates stored (at most kCandidates; the oldest is overwritten)
  size_t newest_ = 0;  // index of the newest candidate
  bool complete_ = false;
};

// A RST changes state only when its sequence number is exactly the one the receiver expects
// next. `next` is the sender's next sequence number as the gateway saw the stream in order.
inline bool rst_exact(uint32_t seq, uint32_t next) {
  return seq == next;
}

// A FIN counts at its place: the byte after its payload is the stream's frontier once its
// payload was taken in order.
inline bool fin_in_place(uint64_t start, uint64_t payload_len, uint64_t frontier) {
  return start + payload_len == frontier;
}

// Interfaces of the two directions, bound at the handshake. Index 0 is "unknown" (locally
// generated packets have no input interface): never bound, never refused.
// A side is never bound to the interface the other side is bound to: a SYN-ACK arriving where
// the client's SYN came in is either spoofed from the client's side (raced ahead of the real one,
// it would claim the server's side and lock the real server out) or the gateway is one-armed,
// where an interface tells the two sides nothing. Either way it leaves the side unbound, and the
// real SYN-ACK, from the server's side, binds it.
class InterfaceBinding {
 public:
  void bind(size_t side, uint32_t ifindex) {
    if (ifindex != 0 && bound_[side] == 0 && bound_[1 - side] != ifindex) bound_[side] = ifindex;
  }
  bool allows(size_t side, uint32_t ifindex) const {
    return ifindex == 0 || bound_[side] == 0 || bound_[side] == ifindex;
  }
  uint32_t bound(size_t side) const { return bound_[side]; }

 private:
  std::array<uint32_t, 2> bound_{};
};

enum class ConnectionState : uint8_t {
  kSynSent,      // client SYN seen
  kEstablished,  // server SYN-ACK seen: both sequence spaces known
  kClosing,      // FIN seen in at least one direction
  kClosed,       // RST seen, or FIN both ways: kept briefly for stray packets
  kPassthrough,  // no handshake seen: passed untouched or refused; the roles are unknown
};
std::string_view state_name(ConnectionState s);

// What the gateway knows of one direction's sender.
struct SenderState {
  SeqSpace space;
  bool fin = false;       // its FIN was taken at its place
  uint64_t sent_end = 0;  // original offset after the last payload byte forwarded
  // The sender's latest numbers, for segments the gateway sends in its name.
  bool ack_seen = false;
  uint32_t last_ack = 0;  // raw: an offset of the reverse direction's REWRITTEN stream
  uint16_t window = 0;
  std::optional<net::TcpTimestamps> timestamps;
};

// How far the stream of a direction is followed, for judging its RST and FIN.
struct StreamPosition {
  enum Kind : uint8_t {
    kNotInspected,  // before the handshake: no stream yet
    kOver,          // inspection is over: positions are no longer followed
    kAt,            // followed: `frontier` is the offset after the last byte taken in order
  } kind = kNotInspected;
  uint64_t frontier = 0;
};

// What a RST or FIN did to the connection.
enum class CloseStep : uint8_t {
  kNone,        // neither, or nothing new
  kRstIgnored,  // not at the receiver's next sequence number: forwarded, state kept
  kFinIgnored,  // not at its place: forwarded, state kept
  kClosing,     // a FIN at its place, the other direction still open
  kClosed,      // exact RST, or FIN both ways
};

// One connection's TCP state as the gateway believes it: the handshake, each direction's
// sequence space, close, and interfaces. Index 0/1: kClientSide/kServerSide.
class Connection {
 public:
  // The client's SYN, on `in_interface`.
  void open(uint32_t client_isn, uint32_t in_interface);
  // A connection whose handshake was not seen: never followed.
  void pass_through() { state_ = ConnectionState::kPassthrough; }
  // The first SYN-ACK was taken: the inspection starts.
  void establish() { state_ = ConnectionState::kEstablished; }
  // Ends it (a reset). Returns whether it was not closed before.
  bool close();

  // A SYN without ACK whose ISN is not this connection's: a new connection on the same ports.
  bool is_new_syn(uint32_t seq) const {
    return state_ != ConnectionState::kSynSent && handshake_.client_isn() != seq;
  }
  // A FIN (at least one way), a RST, or never followed: a new connection may take the ports.
  bool winding_down() const {
    return state_ == ConnectionState::kClosed || state_ == ConnectionState::kClosing ||
           state_ == ConnectionState::kPassthrough;
  }
  bool allows_interface(size_t side, uint32_t ifindex) const {
    return interfaces_.allows(side, ifindex);
  }

  struct HandshakeStep {
    bool synack_taken = false;     // a SYN-ACK was taken as a candidate
    bool synack_replaced = false;  // ... with another ISN than the one in use
  };
  // The handshake: the client's SYN, the server's SYN-ACKs (candidates) and the client's ACK
  // that confirms one of them.
  HandshakeStep on_handshake(size_t side, const net::PacketView& v, uint32_t in_interface);
  // The sender's latest window and timestamps, from the newest packet only: a stale duplicate
  // must not roll them back (an old timestamp gets the gateway's segment discarded by PAWS).
  void note_sender(size_t side, const net::PacketView& v,
                   const std::optional<net::TcpTimestamps>& ts);
  // The newest ack of `side`'s sender.
  void note_ack(size_t side, uint32_t ack);
  // Whether `ack` (from `side`) acknowledges more than `sent` rewritten bytes of the reverse
  // stream (and its FIN): its receiver discards it (RFC 793). `near`: a rewritten offset seen.
  bool acks_unsent(size_t side, uint32_t ack, uint64_t near, uint64_t sent) const;
  // A packet's RST and FIN, where the receiver takes them. `dropped`: the packet is not
  // forwarded (its FIN never arrives).
  CloseStep on_close_flags(size_t side, const net::PacketView& v, StreamPosition pos, bool dropped);
  // A FIN of `side` at its place (also one that waited beyond a hole and now leaves in order).
  CloseStep fin_in_place(size_t side);
  // The payload end of `side` forwarded so far.
  void note_forwarded(size_t side, uint64_t end);

  ConnectionState state() const { return state_; }
  const Handshake& handshake() const { return handshake_; }
  const SenderState& sender(size_t side) const { return sides_[side]; }

 private:
  ConnectionState state_ = ConnectionState::kSynSent;
  Handshake handshake_;          // ISNs; complete when the client confirms
  InterfaceBinding interfaces_;  // each direction's input interface
  std::array<SenderState, 2> sides_;
};

}  // namespace sg::tcp
