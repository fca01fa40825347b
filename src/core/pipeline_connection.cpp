// The pipeline's TCP stages: a connection's handshake, acks and close, and the ways a
// connection is refused or reset (core/pipeline.cpp calls them in order).
#include "core/gateway_segments.hpp"
#include "core/pipeline_impl.hpp"
#include "net/forge.hpp"
#include "util/byte_order.hpp"

namespace sg::core {

bool Pipeline::Impl::track_tcp(InspectedFlow& f, const flow::FlowKey& key, Dir dir,
                               std::span<const uint8_t> packet, const net::PacketView& v,
                               uint32_t in_interface) {
  const size_t side = index(dir);
  if (!f.conn.allows_interface(side, in_interface)) {
    // Claims to be this flow's but came in where the other side's packets do (a spoofed
    // server reply on the client's interface): what the gateway would believe, the real
    // receiver may never get.
    counters.add(Counter::tcp_wrong_interface);
    return false;
  }
  const auto step = f.conn.on_handshake(side, v, in_interface);
  if (step.synack_replaced) counters.add(Counter::tcp_synack_replaced);
  if (step.synack_taken && !f.inspector) {
    f.conn.establish();
    f.profile = config.policies->select(f.client_addr, f.server_addr, f.server_port);
    f.inspector =
        std::make_unique<FlowInspector>(*f.profile, counters, &budget.pool(), &config.exceptions);
    f.inspector->watch_edits(config.watched);
  }
  const bool ack = v.flags & net::kTcpAck;
  // Once inspection is over the kernel may pass data around the gateway (the done mark): what
  // was sent is no longer known here. The receiver may acknowledge the rewritten stream up to
  // what it was sent (the gateway's own insertions included) and the FIN after it.
  if (f.inspector && ack && !f.inspector->finished()) {
    const Dir rev = smtp::opposite(dir);
    const FlowInspector& in = *f.inspector;
    const uint64_t sent = in.edits(rev).to_rewritten_after(in.frontier(rev));
    const uint64_t near = in.edits(rev).to_rewritten(in.frontier(rev));
    if (f.conn.acks_unsent(side, v.ack, near, sent)) {
      counters.add(Counter::tcp_ack_unsent);
      return false;
    }
  }
  // What the sender last said, for segments the gateway may send in its name.
  f.conn.note_sender(side, v, net::read_timestamps(packet, v));
  if (f.inspector && ack) note_ack(f, key, dir, v);
  return true;
}

void Pipeline::Impl::note_ack(InspectedFlow& f, const flow::FlowKey& key, Dir from,
                              const net::PacketView& v) {
  f.conn.note_ack(index(from), v.ack);
  const Dir rev = smtp::opposite(from);
  const tcp::SenderState& rd = f.sender(rev);
  if (!rd.space.known()) return;
  FlowInspector& in = *f.inspector;
  // The receiver acknowledges rewritten offsets of the reverse stream.
  const uint64_t near = in.edits(rev).to_rewritten(in.frontier(rev));
  const uint64_t acked = rd.space.offset(v.ack, near);
  in.on_ack(rev, acked);
  if (rev == Dir::kServerToClient && !f.owed.empty()) {
    f.owed.acked(acked);
    if (f.owed.empty()) forget_owing(key);
  }
}

void Pipeline::Impl::track_close(InspectedFlow& f, const flow::FlowKey& key, Dir dir,
                                 const net::PacketView& v, const PacketVerdict& verdict,
                                 Outbox& box) {
  if (f.reset) return;
  tcp::StreamPosition pos;
  if (f.inspector && f.inspector->finished()) {
    pos.kind = tcp::StreamPosition::kOver;
  } else if (f.inspector) {
    pos = {tcp::StreamPosition::kAt, f.inspector->frontier(dir)};
  }
  switch (f.conn.on_close_flags(index(dir), v, pos, verdict.kind == VerdictKind::kDrop)) {
    case tcp::CloseStep::kRstIgnored:
      counters.add(Counter::tcp_rst_ignored);
      return;
    case tcp::CloseStep::kFinIgnored:
      counters.add(Counter::tcp_fin_ignored);
      return;
    case tcp::CloseStep::kClosed:
      counters.add(Counter::flows_closed);
      force_all(f, key, box);
      return;
    case tcp::CloseStep::kNone:
    case tcp::CloseStep::kClosing:
      return;
  }
}

void Pipeline::Impl::reset_flow(InspectedFlow& f, const flow::FlowKey& key, Outbox& box) {
  if (f.reset) return;
  // Nothing held goes out any more: what the policy refused must not reach the server.
  for (tcp::HoldQueue& q : f.held) {
    budget.remove_held(q.clear([&](const tcp::HeldPacket& h) {
      counters.add(Counter::verdict_drop);
      box.drop_held(h.packet_id);
    }));
  }
  forget_holding(key);
  f.owed.clear();
  forget_owing(key);
  const bool silent = f.inspector && f.inspector->drop_requested();
  if (silent) {
    // drop-connection: nothing is sent; both ends find out by their own timeouts.
    f.reset_answers = 0;
    counters.add(Counter::flows_dropped);
  } else {
    if (f.sender(Dir::kClientToServer).space.known() &&
        f.sender(Dir::kServerToClient).space.known()) {
      for (Dir d : kDirs) box.inject(reset_segment(f, d));
      counters.add(Counter::resets_sent, 2);
    }
    counters.add(Counter::flows_reset);
  }
  f.reset = true;
  decide(f, policy::Event::kFlowReset, silent ? "drop-connection" : "reset", Dir::kClientToServer,
         box, /*ends_connection=*/true);
  if (f.conn.close()) counters.add(Counter::flows_closed);
}

void Pipeline::Impl::decide(const InspectedFlow& f, policy::Event e, std::string_view action, Dir d,
                            Outbox& box, bool ends_connection) {
  Decision x;
  x.event = e;
  x.action = action;
  x.ends_connection = ends_connection;
  x.dir = d;
  x.client = f.client_addr;
  x.server = f.server_addr;
  x.client_port = f.client_port;
  x.server_port = f.server_port;
  if (f.inspector) f.inspector->fill_context(x);
  box.decide(std::move(x));
}

void Pipeline::Impl::flush_decisions(InspectedFlow& f, Outbox& box) {
  if (!f.inspector) return;
  for (Decision& x : f.inspector->take_decisions()) {
    x.client = f.client_addr;
    x.server = f.server_addr;
    x.client_port = f.client_port;
    x.server_port = f.server_port;
    box.decide(std::move(x));
  }
}

bool Pipeline::Impl::raise(InspectedFlow& f, policy::Exception e, Dir d, std::string detail) {
  return f.inspector->raise(e, d, std::move(detail)) == policy::ExceptionAction::kPass;
}

PacketVerdict Pipeline::Impl::answer_after_reset(InspectedFlow& f, const net::PacketView& v,
                                                 Outbox& box) {
  // An endpoint that did not take the first RST (it was in flight, or the sequence number was
  // not exactly the one expected and it sent a challenge ACK) says here what it expects.
  if (!(v.flags & net::kTcpRst) && (v.flags & net::kTcpAck) && f.reset_answers > 0) {
    --f.reset_answers;
    box.inject(reset_reply(v));
    counters.add(Counter::resets_sent);
  }
  return drop();
}

// A packet of a connection whose sequence numbers an earlier daemon mapped (conntrack carries
// the mapped bit) and this one does not know: the deltas are gone, so nothing of it can be
// forwarded correctly, mapped or not (DESIGN.md section 7). It is dropped and both ends are
// reset with numbers they accept without the deltas: the sender at its own ack (its receive
// point, in the space it receives); the receiver at the sender's seq, exact when that direction
// was never shifted, otherwise ignored or answered with a challenge ACK, itself a packet of
// this kind that gets the first sort of RST. Stateless: no flow is created, so every packet of
// such a connection meets the same answer (at most two RSTs per packet; RSTs are never answered
// and challenge ACKs are rate-limited by the endpoints).
PacketVerdict Pipeline::Impl::refuse_unmappable(const net::PacketView& v, Outbox& box) {
  counters.add(Counter::flows_reset_unmappable);
  if (!(v.flags & net::kTcpRst)) {
    if (v.flags & net::kTcpAck) {
      box.inject(reset_reply(v));
      counters.add(Counter::resets_sent);
    }
    box.inject(reset_onward(v));
    counters.add(Counter::resets_sent);
  }
  // Roles are unknown without the handshake: "client" is the packet's sender.
  Decision x;
  x.event = policy::Event::kFlowReset;
  x.action = "reset";
  x.ends_connection = true;
  x.client = v.src;
  x.server = v.dst;
  x.client_port = v.src_port;
  x.server_port = v.dst_port;
  x.subject = "unmappable";
  x.detail = "conntrack marks the connection mapped; its deltas died with an earlier daemon";
  box.decide(std::move(x));
  return drop();
}

PacketVerdict Pipeline::Impl::midstream(const flow::KeyedPacket& kp, const net::PacketView& v,
                                        Timestamp now, Outbox& box) {
  counters.add(Counter::packets_not_tracked);
  // A RST carries nothing a receiver reads, and lets the ends of a forgotten connection clean
  // up: it goes on, and starts nothing.
  if (v.flags & net::kTcpRst) return accept();
  const policy::Exception e = policy::Exception::kMidstream;
  const policy::ExceptionAction action = config.exceptions.of(e);
  counters.add(exception_counter(e));
  // Without the handshake the dialogue's phase is unknown (a DATA body looks like commands):
  // the flow can be passed untouched or refused, never inspected.
  InspectedFlow* f = nullptr;
  if (action != policy::ExceptionAction::kDropPacket) {
    f = insert_flow(kp.key, now, idle_timeout(tcp::ConnectionState::kPassthrough), box);
    counters.add(Counter::flows_midstream);
    f->conn.pass_through();
  }
  // Once per flow (drop-packet keeps none: once per packet, under the log's rate limit).
  // Roles are unknown without the handshake: "client" is the packet's sender.
  Decision x;
  x.event = policy::exception_event(e);
  x.action = policy::to_string(action);
  x.client = v.src;
  x.server = v.dst;
  x.client_port = v.src_port;
  x.server_port = v.dst_port;
  x.subject = policy::info(e).key;
  x.detail = "no handshake seen for this connection";
  box.decide(std::move(x));
  switch (action) {
    case policy::ExceptionAction::kPass:
      return accept();
    case policy::ExceptionAction::kDropPacket:
      return drop();
    case policy::ExceptionAction::kDropFlow:
      f->reset = true;
      f->reset_answers = 0;
      counters.add(Counter::flows_dropped);
      return drop();
    case policy::ExceptionAction::kReject:
      break;
  }
  // Both ends at numbers they accept without knowing the flow: the sender at its own ack, the
  // receiver at the sender's sequence number. Later packets of either end are answered with a
  // RST at their ack (answer_after_reset).
  f->reset = true;
  if (v.flags & net::kTcpAck) {
    box.inject(reset_reply(v));
    counters.add(Counter::resets_sent);
  }
  box.inject(reset_onward(v));
  counters.add(Counter::resets_sent);
  counters.add(Counter::flows_reset);
  return drop();
}

PacketVerdict Pipeline::Impl::refuse_truncated(std::span<const uint8_t> packet, Outbox& box) {
  // Only the headers are read, from a copy whose IP length says "what was copied".
  std::vector<uint8_t> head(
      packet.begin(),
      packet.begin() + static_cast<ptrdiff_t>(std::min<size_t>(packet.size(), 512)));
  if (head.size() >= 40 && (head[0] >> 4) == 6) {
    store_be16(head, 4, static_cast<uint16_t>(head.size() - 40));
  } else if (head.size() >= 20 && (head[0] >> 4) == 4) {
    store_be16(head, 2, static_cast<uint16_t>(head.size()));
  }
  const policy::Exception e = policy::Exception::kTruncated;
  const auto v = net::parse_packet(head);
  InspectedFlow* f = v ? table.find(flow::canonical_key(*v).key) : nullptr;
  if (!v || !f || !f->inspector || f->reset) {
    // Nothing inspected to protect (or nothing to tell whose it is): never passed uninspected.
    counters.add(exception_counter(e));
    if (!v) counters.add(Counter::packets_invalid);
    return drop();
  }
  const flow::KeyedPacket kp = flow::canonical_key(*v);
  const Dir dir = static_cast<Dir>(f->side_of(kp));
  switch (f->inspector->raise(e, dir, "the kernel copied only part of the packet")) {
    case policy::ExceptionAction::kDropPacket:
      flush_decisions(*f, box);
      return drop();
    case policy::ExceptionAction::kPass:
      if (!f->mapped()) {
        // The operator's explicit choice: the packet goes on as it is (never as a payload).
        flush_decisions(*f, box);
        return accept();
      }
      // Its bytes would reach the receiver unmapped: never.
      f->inspector->request_reset();
      break;
    case policy::ExceptionAction::kReject:
    case policy::ExceptionAction::kDropFlow:
      break;
  }
  reset_flow(*f, kp.key, box);
  flush_decisions(*f, box);
  return drop();
}

}  // namespace sg::core
