#pragma once
// Maps the acknowledgement fields of a packet travelling back to a sender whose stream was
// rewritten: the receiver acknowledges REWRITTEN offsets, the sender must see ORIGINAL ones.
#include <cstdint>
#include <span>

#include "net/packet.hpp"
#include "tcp/seq_map.hpp"
#include "tcp/seq_space.hpp"

namespace sg::tcp {

// Rewrites, in place, the ack field (when ACK is set) and both edges of every SACK block of
// `packet`, using `reverse_map` - the map of the OPPOSITE direction, whose receiver sent this
// packet - and that direction's sequence space. `near` is a rewritten offset of that direction
// already seen (e.g. to_rewritten of its sender's frontier), used to resolve wraparound.
// The ack and SACK right edges round down (SeqMap::to_original); SACK left edges round up
// (SeqMap::to_original_left), so no block claims original bytes the receiver lacks.
// Checksums, timestamps and the window are not touched: the caller finalizes the packet.
// Returns true when any byte changed.
bool rewrite_ack_and_sack(std::span<uint8_t> packet, const net::PacketView& v,
                          const SeqMap& reverse_map, const SeqSpace& reverse_space, uint64_t near);

}  // namespace sg::tcp
