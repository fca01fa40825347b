#pragma once
// The canonical 4-tuple: both directions of a connection map to one key.
#include <cstddef>
#include <cstdint>
#include <functional>

#include "net/packet.hpp"

namespace sg::flow {

struct FlowKey {
  net::IpAddress lo_addr, hi_addr;  // ordered so that (lo_addr, lo_port) < (hi_addr, hi_port)
  uint16_t lo_port = 0, hi_port = 0;
  bool operator==(const FlowKey&) const = default;
};

struct KeyedPacket {
  FlowKey key;
  bool src_is_lo = false;  // the packet travels lo -> hi
};

KeyedPacket canonical_key(const net::PacketView& v);

struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const noexcept;
};

}  // namespace sg::flow
