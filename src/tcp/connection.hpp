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
class InterfaceBinding {
 public:
  void bind(size_t side, uint32_t ifindex) {
    if (ifindex != 0 && bound_[side] == 0) bound_[side] = ifindex;
  }
  bool allows(size_t side, uint32_t ifindex) const {
    return ifindex == 0 || bound_[side] == 0 || bound_[side] == ifindex;
  }
  uint32_t bound(size_t side) const { return bound_[side]; }

 private:
  std::array<uint32_t, 2> bound_{};
};

}  // namespace sg::tcp
