#pragma once
// What a worker keeps per connection.
#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "core/flow_inspector.hpp"
#include "tcp/seq_space.hpp"
#include "util/time.hpp"

namespace sg::core {

enum class FlowState : uint8_t {
  kSynSent,      // client SYN seen
  kEstablished,  // server SYN-ACK seen: both sequence spaces known
  kClosing,      // FIN seen in at least one direction
  kClosed,       // RST seen, or FIN both ways: kept briefly for stray packets
  kPassthrough,  // picked up mid-stream or inspection given up: packets pass untouched
};

// A packet kept queued in the kernel until the bytes it carries are decided.
struct HeldPacket {
  uint32_t packet_id = 0;
  uint64_t start = 0;          // stream offset of its first payload byte
  uint64_t end = 0;            // stream offset after its payload
  Timestamp deadline{};        // partial line neutralised, or (not fed) the packet dropped
  bool fed = true;             // false: it lies beyond a hole and has not been inspected yet
  std::vector<uint8_t> bytes;  // a copy of the whole IP packet
};

struct FlowDirection {
  tcp::SeqSpace space;
  std::deque<HeldPacket> held;
  size_t held_bytes = 0;
  bool fin = false;
};

struct Flow {
  FlowState state = FlowState::kSynSent;
  bool client_is_lo = false;                 // the SYN came from the key's lo side
  std::array<FlowDirection, 2> dirs;         // indexed by smtp::Dir
  std::unique_ptr<FlowInspector> inspector;  // created with the handshake
  bool done_marked = false;                  // kernel bypass requested
};

}  // namespace sg::core
