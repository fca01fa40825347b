#pragma once
// Internet checksums. A payload handed back to NFQUEUE is CHECKSUM_NONE for the kernel, so every
// modified packet carries complete IP and TCP checksums computed here.
#include <cstdint>
#include <span>

#include "net/packet.hpp"

namespace sg::net {

// One's-complement sum of `data` folded to 16 bits, not inverted.
uint16_t ones_complement_sum(std::span<const uint8_t> data, uint32_t initial = 0);

// Recomputes the IPv4 header checksum (IPv4 only) and the full TCP checksum over pseudo-header,
// header and payload. Works for GSO super-packets whose checksum field held only the
// pseudo-header sum (CSUMNOTREADY): the field is overwritten, never read.
void finalize_checksums(std::span<uint8_t> packet, const PacketView& v);

// True when the TCP checksum of the packet is complete and correct (tests and diagnostics).
bool tcp_checksum_ok(std::span<const uint8_t> packet, const PacketView& v);
bool ipv4_checksum_ok(std::span<const uint8_t> packet, const PacketView& v);

}  // namespace sg::net
