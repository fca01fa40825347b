#include "core/gateway_segments.hpp"

#include "net/forge.hpp"

namespace sg::core {
namespace {

using smtp::Dir;

const tcp::SenderState& at(const InspectedFlow& f, Dir d) {
  return f.sender(d);
}

// The sender of `d` addressing the receiver of `d`.
net::SegmentSpec spec_for(const InspectedFlow& f, Dir d) {
  net::SegmentSpec s;
  const bool c2s = d == Dir::kClientToServer;
  s.src = c2s ? f.client_addr : f.server_addr;
  s.dst = c2s ? f.server_addr : f.client_addr;
  s.src_port = c2s ? f.client_port : f.server_port;
  s.dst_port = c2s ? f.server_port : f.client_port;
  return s;
}

}  // namespace

std::vector<uint8_t> answer_segment(const InspectedFlow& f, const OwedReply& owed) {
  const Dir s2c = Dir::kServerToClient, c2s = Dir::kClientToServer;
  const FlowInspector& in = *f.inspector;
  net::SegmentSpec s = spec_for(f, s2c);
  s.seq = at(f, s2c).space.seq(owed.rw_start);
  s.flags = net::kTcpPsh;
  if (at(f, s2c).ack_seen) {
    // The server's ack is an offset of the rewritten client stream: the client reads original.
    const rewrite::EditList& e = in.edits(c2s);
    s.ack =
        e.map().map_ack(at(f, c2s).space, at(f, s2c).last_ack, e.to_rewritten(in.frontier(c2s)));
    s.flags |= net::kTcpAck;
  }
  s.window = at(f, s2c).window;
  s.timestamps = at(f, s2c).timestamps;
  s.payload = {reinterpret_cast<const uint8_t*>(owed.bytes.data()), owed.bytes.size()};
  return net::forge_segment(s);
}

std::vector<uint8_t> reset_segment(const InspectedFlow& f, Dir d) {
  const Dir r = smtp::opposite(d);
  net::SegmentSpec s = spec_for(f, d);
  const tcp::SenderState& fd = at(f, d);
  uint64_t next = fd.sent_end;
  if (f.inspector) next = f.inspector->edits(d).to_rewritten_after(next);
  s.seq = fd.space.seq(next);
  // The receiver's own stream, as far as it was forwarded, in its sender's (original) numbers.
  s.ack = at(f, r).space.seq(at(f, r).sent_end);
  s.flags = net::kTcpRst | net::kTcpAck;
  return net::forge_segment(s);
}

namespace {
std::vector<uint8_t> bare_reset(const net::PacketView& v, bool back) {
  net::SegmentSpec s;
  s.src = back ? v.dst : v.src;
  s.dst = back ? v.src : v.dst;
  s.src_port = back ? v.dst_port : v.src_port;
  s.dst_port = back ? v.src_port : v.dst_port;
  s.seq = back ? v.ack : v.seq;
  s.flags = net::kTcpRst;
  return net::forge_segment(s);
}
}  // namespace

std::vector<uint8_t> reset_reply(const net::PacketView& v) {
  return bare_reset(v, true);
}

std::vector<uint8_t> reset_onward(const net::PacketView& v) {
  return bare_reset(v, false);
}

}  // namespace sg::core
