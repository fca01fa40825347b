#include "tcp/ack_rewrite.hpp"

namespace sg::tcp {

bool rewrite_ack_and_sack(std::span<uint8_t> packet, const net::PacketView& v,
                          const SeqMap& reverse_map, const SeqSpace& reverse_space, uint64_t near) {
  bool changed = false;
  // Without ACK the field carries no meaning (and may be garbage): leave it as sent.
  if (v.flags & net::kTcpAck) {
    const uint32_t ack = reverse_map.map_ack(reverse_space, v.ack, near);
    if (ack != v.ack) {
      net::write_ack(packet, v, ack);
      changed = true;
    }
  }
  for (size_t i = 0; i < v.sack_count; ++i) {
    const net::SackBlock b = net::read_sack(packet, v, i);
    const net::SackBlock mapped{reverse_map.map_sack_left(reverse_space, b.left, near),
                                reverse_map.map_ack(reverse_space, b.right, near)};
    if (mapped.left != b.left || mapped.right != b.right) {
      net::write_sack(packet, v, i, mapped);
      changed = true;
    }
  }
  return changed;
}

}  // namespace sg::tcp
