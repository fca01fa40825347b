#pragma once
// What a worker keeps per connection.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/flow_inspector.hpp"
#include "net/forge.hpp"
#include "net/packet.hpp"
#include "tcp/connection.hpp"
#include "tcp/seq_space.hpp"
#include "util/time.hpp"

namespace sg::core {

enum class FlowState : uint8_t {
  kSynSent,      // client SYN seen
  kEstablished,  // server SYN-ACK seen: both sequence spaces known
  kClosing,      // FIN seen in at least one direction
  kClosed,       // RST seen, or FIN both ways: kept briefly for stray packets
  kPassthrough,  // no handshake seen: passed untouched (exception policy pass) or, with
                 // `reset` set, refused (reject, drop-flow); the roles are unknown
};

// A packet kept queued in the kernel until the bytes it carries are decided.
struct HeldPacket {
  uint32_t packet_id = 0;
  uint64_t start = 0;          // stream offset of its first payload byte
  uint64_t end = 0;            // stream offset after its payload
  Timestamp deadline{};        // partial line neutralised, or (not fed) the packet dropped
  bool fed = true;             // false: it lies beyond a hole and has not been inspected yet
  std::vector<uint8_t> bytes;  // a copy of the whole IP packet
  bool conflict = false;       // overlaps inspected bytes with different ones: dropped
};

struct FlowDirection {
  tcp::SeqSpace space;
  std::vector<HeldPacket> held;  // at most max_held_packets_per_flow
  size_t held_bytes = 0;
  bool fin = false;
  uint64_t sent_end = 0;  // original offset after the last payload byte forwarded
  // The sender's latest numbers, for segments the gateway sends in its name.
  bool ack_seen = false;
  uint32_t last_ack = 0;  // raw: an offset of the reverse direction's REWRITTEN stream
  uint16_t window = 0;
  std::optional<net::TcpTimestamps> timestamps;
};

// Bytes the gateway inserted into the server's stream (an answer) that no server segment
// carries yet: the gateway sends them itself and again until the client acknowledges them.
struct OwedReply {
  uint64_t pos = 0;       // server stream offset where they were inserted
  uint64_t rw_start = 0;  // their place in the rewritten stream
  std::string bytes;
  Timestamp deadline{};
  Duration rto{};
  unsigned tries = 0;
  uint64_t rw_end() const { return rw_start + bytes.size(); }
};

struct Flow {
  FlowState state = FlowState::kSynSent;
  bool client_is_lo = false;                // the SYN came from the key's lo side
  net::IpAddress client_addr, server_addr;  // from the SYN
  uint16_t client_port = 0, server_port = 0;
  std::array<FlowDirection, 2> dirs;               // indexed by smtp::Dir
  tcp::Handshake handshake;                        // ISNs; complete when the client confirms
  tcp::InterfaceBinding interfaces;                // each direction's input interface
  std::shared_ptr<const policy::Profile> profile;  // chosen at the handshake, kept to the end
  std::unique_ptr<FlowInspector> inspector;        // created with the handshake
  bool done_marked = false;                        // kernel bypass requested
  std::vector<OwedReply> owed;                     // gateway bytes not yet acknowledged
  bool mapped_reported = false;                    // reported in Output::mapped_flows
  bool reset = false;                              // the gateway reset it: every packet is dropped
  bool urgent_logged = false;                      // urgent_cleared logged (once per flow)
  bool budget_logged = false;                      // memory_budget logged (once per flow)
  size_t pending_counted = 0;  // the inspector's unconsumed bytes, as counted in the budget
  uint8_t reset_answers = 4;                       // RSTs left to answer stray packets with
};

}  // namespace sg::core
