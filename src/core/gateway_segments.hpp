#pragma once
// Segments the gateway sends in an endpoint's name: the answer to a command it removed, and
// resets. Numbers come from what the endpoints last sent, mapped into the receiver's space.
#include <cstdint>
#include <vector>

#include "core/inspected_flow.hpp"
#include "net/packet.hpp"

namespace sg::core {

// The server -> client segment carrying `owed` (an answer the gateway inserted), acknowledging
// what the server last acknowledged (so the client learns its removed command arrived).
std::vector<uint8_t> answer_segment(const InspectedFlow& f, const OwedReply& owed);

// A RST toward the receiver of direction `d`, in the name of that direction's sender, with the
// sequence number the receiver expects next if it has everything forwarded so far.
std::vector<uint8_t> reset_segment(const InspectedFlow& f, smtp::Dir d);

// A RST answering a packet of a flow already reset: back to its sender, with its ack as the
// sequence number - exactly what the sender expects (it also answers a challenge ACK).
std::vector<uint8_t> reset_reply(const net::PacketView& v);

// A RST onward to the packet's receiver, in its sender's name, at the packet's own sequence
// number: exact when that direction's numbers were never shifted.
std::vector<uint8_t> reset_onward(const net::PacketView& v);

}  // namespace sg::core
