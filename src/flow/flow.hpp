#pragma once
// One connection as the flow table keeps it at the TCP level: who its ends are, its TCP state,
// and the packets each direction holds. What inspects its bytes is added on top (core).
#include <array>
#include <cstddef>
#include <cstdint>

#include "flow/flow_key.hpp"
#include "net/packet.hpp"
#include "tcp/connection.hpp"
#include "tcp/hold_queue.hpp"

namespace sg::flow {

struct Flow {
  bool client_is_lo = false;                // the SYN came from the key's lo side
  net::IpAddress client_addr, server_addr;  // from the SYN
  uint16_t client_port = 0, server_port = 0;
  tcp::Connection conn;
  std::array<tcp::HoldQueue, 2> held;  // indexed by side (tcp::kClientSide, kServerSide)

  // The side that sent the packet keyed as `kp`.
  size_t side_of(const KeyedPacket& kp) const {
    return kp.src_is_lo == client_is_lo ? tcp::kClientSide : tcp::kServerSide;
  }
  bool holds() const { return !held[0].empty() || !held[1].empty(); }
  // The ends as the SYN named them.
  void set_ends(const net::PacketView& syn, bool from_lo) {
    client_is_lo = from_lo;
    client_addr = syn.src;
    server_addr = syn.dst;
    client_port = syn.src_port;
    server_port = syn.dst_port;
  }
};

}  // namespace sg::flow
