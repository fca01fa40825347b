#include "tcp/connection.hpp"

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

}  // namespace sg::tcp
