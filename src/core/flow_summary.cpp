#include "core/flow_summary.hpp"

#include "core/inspected_flow.hpp"
#include "flow/flow_key.hpp"

namespace sg::core {

FlowSummary summarize(const flow::FlowKey& key, const InspectedFlow& f, Timestamp expires) {
  using smtp::Dir;
  FlowSummary s;
  // A flow picked up mid-stream never saw a SYN: its roles are unknown.
  s.roles_known = f.conn.state() != tcp::ConnectionState::kPassthrough;
  if (s.roles_known) {
    s.client = f.client_addr;
    s.server = f.server_addr;
    s.client_port = f.client_port;
    s.server_port = f.server_port;
  } else {
    s.client = key.lo_addr;
    s.server = key.hi_addr;
    s.client_port = key.lo_port;
    s.server_port = key.hi_port;
  }
  s.state = tcp::state_name(f.conn.state());
  if (f.profile) s.profile = f.profile->name;
  if (f.inspector) {
    const FlowInspector& in = *f.inspector;
    s.bytes_c2s = in.frontier(Dir::kClientToServer);
    s.bytes_s2c = in.frontier(Dir::kServerToClient);
    s.mapped = f.mapped();
    s.delta_c2s = in.edits(Dir::kClientToServer).map().total_delta();
    s.delta_s2c = in.edits(Dir::kServerToClient).map().total_delta();
  }
  for (const tcp::HoldQueue& q : f.held) {
    s.held_packets += q.size();
    s.held_bytes += q.bytes();
  }
  s.owed_replies = f.owed.size();
  s.done = f.done_marked;
  s.reset = f.reset;
  s.expires = expires;
  return s;
}

}  // namespace sg::core
