#pragma once
// Building TCP segments the gateway sends itself: answers on the server's behalf, their
// retransmissions, and resets. Pure: returns bytes; sending them is the kernel shell's job.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "net/packet.hpp"

namespace sg::net {

struct TcpTimestamps {
  uint32_t value = 0;  // TSval
  uint32_t echo = 0;   // TSecr
};

struct SegmentSpec {
  IpAddress src, dst;  // both IPv4 (v4-mapped) or both IPv6: the family follows src
  uint16_t src_port = 0, dst_port = 0;
  uint32_t seq = 0, ack = 0;
  uint8_t flags = 0;  // kTcp* bits
  uint16_t window = 0;
  uint8_t ttl = 64;                         // IPv4 TTL or IPv6 hop limit
  std::optional<TcpTimestamps> timestamps;  // adds NOP NOP TS (12 option bytes) when set
  std::span<const uint8_t> payload;
};

// A complete IPv4 (DF set) or IPv6 packet with correct IP and TCP checksums.
std::vector<uint8_t> forge_segment(const SegmentSpec& s);

// The TCP timestamps option of a parsed packet, when it has one.
std::optional<TcpTimestamps> read_timestamps(std::span<const uint8_t> bytes, const PacketView& v);

}  // namespace sg::net
