#pragma once
// What a packet of an inspected connection becomes on its way to the receiver: its payload
// rendered through its direction's edits, its seq mapped into the rewritten space, its ack and
// SACK blocks mapped back through the reverse direction's edits, lengths and checksums redone.
// Pure: bytes in, bytes out.
#include <cstdint>
#include <span>
#include <vector>

#include "core/counters.hpp"
#include "core/inspected_flow.hpp"
#include "net/packet.hpp"

namespace sg::core {

enum class MapOutcome : uint8_t {
  kUnchanged,  // forward the packet as it came
  kRewritten,  // forward the bytes in `packet` (same length, changed in place) or `out`
  kTooLong,    // the rewritten packet would exceed 64 KiB: it cannot be forwarded
};

struct MappedPacket {
  MapOutcome outcome = MapOutcome::kUnchanged;
  std::span<const uint8_t> bytes;  // for kRewritten
};

// Maps `packet` (parsed as `v`) of direction `d` of the established, inspected flow `f`.
// Same-length edits of a flow that never changed a length are applied in place; anything else
// is built in `out`. Updates the direction's forwarded end (tcp::SenderState::sent_end).
MappedPacket map_packet(InspectedFlow& f, smtp::Dir d, std::span<uint8_t> packet, const net::PacketView& v,
                        std::vector<uint8_t>& out, Counters& counters);

// The stream offset of `d`'s sequence number `seq`, resolved near what was seen of `d`.
uint64_t stream_offset(const InspectedFlow& f, smtp::Dir d, uint32_t seq);

}  // namespace sg::core
