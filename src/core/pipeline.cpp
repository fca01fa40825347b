#include "core/pipeline.hpp"

#include <algorithm>
#include <optional>

#include "core/flow.hpp"
#include "core/gateway_segments.hpp"
#include "core/segment_mapper.hpp"
#include "flow/flow_key.hpp"
#include "flow/flow_table.hpp"
#include "net/checksum.hpp"
#include "net/forge.hpp"
#include "net/packet.hpp"

namespace sg::core {
namespace {

using smtp::Dir;

// Idle timeouts per state. SMTP servers wait 5 minutes for a command (RFC 5321 4.5.3.2.7);
// an established flow outlives that.
Duration idle_timeout(FlowState s) {
  switch (s) {
    case FlowState::kSynSent:
      return seconds(30);
    case FlowState::kEstablished:
      return seconds(900);
    case FlowState::kClosing:
      return seconds(60);
    case FlowState::kClosed:
      return seconds(10);
    case FlowState::kPassthrough:
      return seconds(900);
  }
  return seconds(60);
}

// A connection whose inspection is over (the done mark) sends the gateway only its SYN, FIN
// and RST packets (the rest bypass the queue): kept long enough to see it close rather than be
// forgotten and met as a mid-stream pickup when it does.
Duration idle_timeout(const Flow& f) {
  if (f.done_marked && f.state != FlowState::kClosed) return seconds(7200);
  return idle_timeout(f.state);
}

constexpr Dir kDirs[] = {Dir::kClientToServer, Dir::kServerToClient};

// Retransmission of the gateway's own segments: RFC 6298's minimum RTO is 1 s, but a reply to a
// command is expected at once; Linux's 200 ms floor is the model. Backoff doubles up to 8 s;
// after kMaxTries sends (about a minute) the client is taken to be gone and the flow is reset.
constexpr Duration kInjectRto = milliseconds(250);
constexpr Duration kInjectRtoMax = seconds(8);
constexpr unsigned kMaxTries = 12;
size_t index(Dir d) {
  return static_cast<size_t>(d);
}

}  // namespace

struct Pipeline::Impl {
  explicit Impl(PipelineConfig c) : config(std::move(c)), table(config.max_flows) {}

  PipelineConfig config;
  Counters counters;
  tcp::BlockPool pool;  // before the table: flows give their blocks back when destroyed
  flow::FlowTable<Flow> table;
  size_t held_total = 0;        // bytes of every held packet
  size_t pending_total = 0;     // unconsumed session bytes of every flow (account_pending)
  Timestamp no_victim_until{};  // the last search for flows to release found none
  // Bytes of the packets released by the current call; Release spans point here.
  std::vector<std::vector<uint8_t>> released_bytes;
  std::vector<flow::FlowKey> holding;  // flows that hold packets (few: only partial lines)
  std::vector<flow::FlowKey> owing;    // flows with gateway segments not yet acknowledged
  std::vector<uint8_t> current;        // the current packet, when rewriting changed its length
  std::vector<std::vector<uint8_t>> injected_bytes;  // Injection spans point here
  Timestamp next_expiry{};
  Output* out = nullptr;

  PacketVerdict process(uint32_t id, std::span<uint8_t> packet, Timestamp now, PacketMeta meta);
  PacketVerdict refuse_unmappable(const net::PacketView& v);
  // A packet the kernel copied only in part: the truncated exception's policy.
  PacketVerdict refuse_truncated(std::span<const uint8_t> packet);
  // A packet of a connection whose handshake was not seen: the midstream exception's policy.
  PacketVerdict midstream(const flow::KeyedPacket& kp, const net::PacketView& v, Timestamp now);
  Flow* insert_flow(const flow::FlowKey& key, Timestamp now);
  Flow* start_flow(const flow::KeyedPacket& kp, const net::PacketView& v, Timestamp now,
                   uint32_t in_interface);
  // The handshake: the client's SYN, the server's SYN-ACKs (candidates) and the client's ACK
  // that confirms one of them (tcp::Handshake).
  void track_handshake(Flow& f, Dir dir, const net::PacketView& v, uint32_t in_interface);
  // Whether the packet acknowledges bytes of the reverse direction that were never sent (its
  // receiver discards it: RFC 793).
  bool acks_unsent(const Flow& f, Dir from, const net::PacketView& v) const;
  // RST and FIN change the flow's state only where the receiver takes them (tcp/connection).
  void track_close(Flow& f, const flow::FlowKey& key, Dir dir, const net::PacketView& v,
                   const PacketVerdict& verdict);
  // A FIN of `dir` at its place: the flow is closing, or closed (true) when both ways are.
  bool note_fin(Flow& f, Dir dir);
  // Exception `e` about the packet at hand (counted, logged, its action taken by the
  // inspector; a reset follows at the end of process). True when the packet goes on (pass).
  bool raise(Flow& f, policy::Exception e, Dir d, std::string detail = {});
  PacketVerdict handle_data(Flow& f, const flow::FlowKey& key, Dir dir, uint32_t id,
                            std::span<uint8_t> packet, const net::PacketView& v, Timestamp now);
  void release_ready(Flow& f, const flow::FlowKey& key);
  bool can_hold(const FlowDirection& fd, size_t bytes) const;
  size_t budget_used() const { return pool.bytes_held() + held_total + pending_total; }
  // Bytes the session has not consumed yet (a partial line, client input waiting for a reply):
  // a peer controls them, so they count against the budget too. Updated after each feed.
  void account_pending(Flow& f) {
    const size_t now = f.inspector->pending_memory(Dir::kClientToServer) +
                       f.inspector->pending_memory(Dir::kServerToClient);
    pending_total = pending_total - f.pending_counted + now;
    f.pending_counted = now;
  }
  void forget_pending(Flow& f) {
    pending_total -= f.pending_counted;
    f.pending_counted = 0;
  }
  // Whether `more` bytes fit in the budget, after letting go of pooled blocks and of the
  // retained bytes of the flow retaining the most (when it retains more than `f`).
  bool within_budget(Flow& f, size_t more, Timestamp now);
  void note_budget(Flow& f, Dir d, std::string_view action);
  void hold(Flow& f, const flow::FlowKey& key, FlowDirection& fd, HeldPacket h);
  void feed_held(Flow& f, Dir d);
  void drop_unfed(Flow& f, Dir d, Timestamp deadline);
  void force_all(Flow& f, const flow::FlowKey& key);
  // The packet as the receiver must get it (render, map, checksums), as a verdict.
  PacketVerdict emit(Flow& f, Dir d, std::span<uint8_t> packet, const net::PacketView& v,
                     std::vector<uint8_t>& storage);
  void note_ack(Flow& f, const flow::FlowKey& key, Dir from, const net::PacketView& v);
  void take_gateway_replies(Flow& f, const flow::FlowKey& key, Timestamp now);
  void inject(std::vector<uint8_t> bytes);
  void send_owed(Flow& f, OwedReply& o, Timestamp now);
  void reset_flow(Flow& f, const flow::FlowKey& key);
  // Hands the flow's decisions to the caller with the connection's addresses.
  void flush_decisions(Flow& f);
  void decide(const Flow& f, policy::Event e, std::string_view action, Dir d);
  PacketVerdict answer_after_reset(Flow& f, const net::PacketView& v);
  void forget_owing(const flow::FlowKey& key) {
    owing.erase(std::remove(owing.begin(), owing.end(), key), owing.end());
  }
  void forget_holding(const flow::FlowKey& key) {
    holding.erase(std::remove(holding.begin(), holding.end(), key), holding.end());
  }
  bool holds(const Flow& f) const { return !f.dirs[0].held.empty() || !f.dirs[1].held.empty(); }
  PacketVerdict accept(uint32_t mark = 0) {
    counters.add(Counter::verdict_accept);
    return {VerdictKind::kAccept, mark};
  }
  PacketVerdict drop() {
    counters.add(Counter::verdict_drop);
    return {VerdictKind::kDrop, 0};
  }
};

Pipeline::Pipeline(PipelineConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

void Pipeline::set_policies(std::shared_ptr<const policy::PolicySet> policies) {
  impl_->config.policies = std::move(policies);
}
Pipeline::~Pipeline() = default;

const Counters& Pipeline::counters() const {
  return impl_->counters;
}
bool Pipeline::has_held_packets() const {
  return !impl_->holding.empty();
}
size_t Pipeline::budget_used() const {
  return impl_->budget_used();
}

namespace {
std::string_view state_name(FlowState s) {
  switch (s) {
    case FlowState::kSynSent:
      return "syn-sent";
    case FlowState::kEstablished:
      return "established";
    case FlowState::kClosing:
      return "closing";
    case FlowState::kClosed:
      return "closed";
    case FlowState::kPassthrough:
      return "passthrough";
  }
  return "unknown";
}
}  // namespace

size_t Pipeline::summarize_flows(std::vector<FlowSummary>& out, size_t max) const {
  const Impl& m = *impl_;
  size_t added = 0;
  m.table.for_each([&](const flow::FlowKey& key, const Flow& f) {
    if (added >= max) return;
    ++added;
    FlowSummary& s = out.emplace_back();
    // A flow picked up mid-stream never saw a SYN: its roles are unknown.
    s.roles_known = f.state != FlowState::kPassthrough;
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
    s.state = state_name(f.state);
    if (f.profile) s.profile = f.profile->name;
    if (f.inspector) {
      const FlowInspector& in = *f.inspector;
      s.bytes_c2s = in.frontier(Dir::kClientToServer);
      s.bytes_s2c = in.frontier(Dir::kServerToClient);
      const rewrite::EditList& c2s = in.edits(Dir::kClientToServer);
      const rewrite::EditList& s2c = in.edits(Dir::kServerToClient);
      s.mapped = c2s.ever_resized() || s2c.ever_resized();
      s.delta_c2s = c2s.map().total_delta();
      s.delta_s2c = s2c.map().total_delta();
    }
    for (const FlowDirection& fd : f.dirs) {
      s.held_packets += fd.held.size();
      s.held_bytes += fd.held_bytes;
    }
    s.owed_replies = f.owed.size();
    s.done = f.done_marked;
    s.reset = f.reset;
    s.expires = m.table.deadline_of(f);
  });
  return m.table.size();
}

PacketVerdict Pipeline::process(uint32_t packet_id, std::span<uint8_t> packet,
                                bool /*checksum_not_ready*/, Timestamp now, Output& released,
                                PacketMeta meta) {
  // CSUMNOTREADY needs no handling here: an unmodified packet goes back as it came, and a
  // modified one gets complete checksums computed from scratch.
  impl_->released_bytes.clear();
  impl_->injected_bytes.clear();
  impl_->out = &released;
  return impl_->process(packet_id, packet, now, meta);
}

PacketVerdict Pipeline::Impl::process(uint32_t id, std::span<uint8_t> packet, Timestamp now,
                                      PacketMeta meta) {
  counters.add(Counter::packets);
  counters.add(Counter::bytes, packet.size());
  if (meta.truncated) return refuse_truncated(packet);
  const auto parsed = net::parse_packet(packet);
  if (!parsed) {
    // What we cannot parse we cannot inspect: it never reaches the server.
    counters.add(Counter::packets_invalid);
    return drop();
  }
  const net::PacketView& v = *parsed;
  if (meta.checksum_unverified && !net::tcp_checksum_ok(packet, v)) {
    // The receiver drops it; it must not move the gateway's state either (a RST with a wrong
    // checksum would close the flow here and nowhere else).
    counters.add(Counter::tcp_bad_checksum);
    return drop();
  }
  const flow::KeyedPacket kp = flow::canonical_key(v);
  Flow* f = table.find(kp.key);
  const bool syn_only = (v.flags & (net::kTcpSyn | net::kTcpAck | net::kTcpRst)) == net::kTcpSyn;
  if (f && syn_only && f->state != FlowState::kSynSent && f->handshake.client_isn() != v.seq) {
    // A new connection on the 4-tuple of an old one: it has a new ISN. Only an old connection
    // that is over makes room for it: a SYN never erases a live inspected flow (anyone who can
    // send one could otherwise wipe the state of a connection under inspection). A duplicate
    // or late copy of the first SYN (same ISN) goes on as any packet of the flow.
    // A FIN at its place counts (kClosing): the client that sends the SYN has closed or been
    // closed on, and reusing its port is what clients do after a server closes first.
    const bool over = f->reset || f->state == FlowState::kClosed ||
                      f->state == FlowState::kClosing || f->state == FlowState::kPassthrough ||
                      !f->inspector || f->inspector->finished();
    if (!over) {
      counters.add(Counter::tcp_syn_refused);
      return drop();
    }
    force_all(*f, kp.key);
    forget_pending(*f);
    table.erase(kp.key);
    forget_owing(kp.key);
    f = nullptr;
  }
  if (!f && meta.conntrack_mapped && !syn_only) return refuse_unmappable(v);
  if (!f && !syn_only) return midstream(kp, v, now);
  if (!f) f = start_flow(kp, v, now, meta.in_interface);
  const Dir dir = kp.src_is_lo == f->client_is_lo ? Dir::kClientToServer : Dir::kServerToClient;
  FlowDirection& fd = f->dirs[index(dir)];

  if (f->reset) {
    table.touch(*f, now, idle_timeout(*f));
    return answer_after_reset(*f, v);
  }
  if (f->state == FlowState::kPassthrough) {
    table.touch(*f, now, idle_timeout(*f));
    return accept();
  }
  if (!f->interfaces.allows(index(dir), meta.in_interface)) {
    // Claims to be this flow's but came in where the other side's packets do (a spoofed
    // server reply on the client's interface): what the gateway would believe, the real
    // receiver may never get.
    counters.add(Counter::tcp_wrong_interface);
    return drop();
  }
  track_handshake(*f, dir, v, meta.in_interface);
  if (f->inspector && (v.flags & net::kTcpAck) && acks_unsent(*f, dir, v)) {
    counters.add(Counter::tcp_ack_unsent);
    return drop();
  }
  // What the sender last said, for segments the gateway may send in its name - from the newest
  // packet only: a stale duplicate must not roll the numbers back (an old timestamp gets the
  // gateway's segment discarded by PAWS, an old ack leaves the removed command unacknowledged).
  const auto ts = net::read_timestamps(packet, v);
  const bool older_ts =
      ts && fd.timestamps && static_cast<int32_t>(ts->value - fd.timestamps->value) < 0;
  const bool older_ack =
      (v.flags & net::kTcpAck) && fd.ack_seen && static_cast<int32_t>(v.ack - fd.last_ack) < 0;
  if (!older_ts && !older_ack) {
    fd.window = v.window;
    if (ts) fd.timestamps = ts;
  }
  if (f->inspector && (v.flags & net::kTcpAck)) note_ack(*f, kp.key, dir, v);

  PacketVerdict verdict{};
  if (!f->inspector || (v.payload_len > 0 && !f->handshake.complete())) {
    // Data before the handshake completed (TCP Fast Open, or a server byte before the client
    // confirmed which SYN-ACK it took): nothing to place it in.
    if (v.payload_len > 0) {
      counters.add(Counter::packets_not_tracked);
      table.touch(*f, now, idle_timeout(*f));
      return drop();
    }
    verdict = accept();
  } else if (v.payload_len > 0) {
    verdict = handle_data(*f, kp.key, dir, id, packet, v, now);
  } else {
    verdict = emit(*f, dir, packet, v, current);
  }

  if (f->inspector) {
    take_gateway_replies(*f, kp.key, now);
    flush_decisions(*f);
    if (!f->mapped_reported && (f->inspector->edits(Dir::kClientToServer).ever_resized() ||
                                f->inspector->edits(Dir::kServerToClient).ever_resized())) {
      f->mapped_reported = true;
      counters.add(Counter::flows_mapped);
      if (out)
        out->mapped_flows.push_back(
            MappedFlow{f->client_addr, f->server_addr, f->client_port, f->server_port});
    }
    if (f->inspector->reset_requested()) {
      reset_flow(*f, kp.key);
      table.touch(*f, now, idle_timeout(*f));
      // emit() forwards nothing once a reset is asked for; a packet held a moment ago was
      // dropped with the others, through a release.
      return verdict;
    }
  }
  track_close(*f, kp.key, dir, v, verdict);
  if (f->inspector && f->inspector->finished() && config.done_mark != 0 && f->owed.empty() &&
      !f->inspector->edits(Dir::kClientToServer).ever_resized() &&
      !f->inspector->edits(Dir::kServerToClient).ever_resized() &&
      verdict.kind != VerdictKind::kHold && verdict.kind != VerdictKind::kDrop) {
    // Bypass only flows whose numbers need no mapping: a mapped flow's packets must keep
    // coming here for the rest of the connection.
    verdict.mark = config.done_mark;
    f->done_marked = true;
  }
  table.touch(*f, now, idle_timeout(*f));
  return verdict;
}

void Pipeline::Impl::track_handshake(Flow& f, Dir dir, const net::PacketView& v,
                                     uint32_t in_interface) {
  const uint8_t syn_ack = v.flags & (net::kTcpSyn | net::kTcpAck | net::kTcpRst);
  if (dir == Dir::kClientToServer && syn_ack == net::kTcpSyn && f.state == FlowState::kSynSent) {
    f.handshake.on_syn(v.seq);  // a retransmitted SYN
    f.dirs[index(dir)].space = tcp::SeqSpace(v.seq);
    return;
  }
  if (dir == Dir::kServerToClient && syn_ack == (net::kTcpSyn | net::kTcpAck)) {
    // Every SYN-ACK answering the client's SYN is a candidate until the client confirms one;
    // after that a SYN-ACK changes nothing (the client answers it with an ACK).
    const bool first = !f.handshake.has_candidate();
    const uint32_t before = first ? 0 : f.handshake.server_isn();
    if (!f.handshake.on_synack(v.seq, v.ack)) return;
    f.interfaces.bind(index(dir), in_interface);
    f.dirs[index(dir)].space = tcp::SeqSpace(f.handshake.server_isn());
    if (!first && before != v.seq) counters.add(Counter::tcp_synack_replaced);
    if (!f.inspector) {
      f.state = FlowState::kEstablished;
      f.profile = config.policies->select(f.client_addr, f.server_addr, f.server_port);
      f.inspector =
          std::make_unique<FlowInspector>(*f.profile, counters, &pool, &config.exceptions);
    }
    return;
  }
  if (dir == Dir::kClientToServer && (v.flags & net::kTcpAck) && !(v.flags & net::kTcpSyn) &&
      !f.handshake.complete()) {
    if (const auto isn = f.handshake.on_client_ack(v.ack))
      f.dirs[index(Dir::kServerToClient)].space = tcp::SeqSpace(*isn);
  }
}

bool Pipeline::Impl::acks_unsent(const Flow& f, Dir from, const net::PacketView& v) const {
  // Once inspection is over the kernel may pass data around the gateway (the done mark):
  // what was sent is no longer known here.
  if (!f.handshake.complete() || f.inspector->finished()) return false;
  const Dir rev = smtp::opposite(from);
  const FlowDirection& rd = f.dirs[index(rev)];
  if (!rd.space.known()) return false;
  const FlowInspector& in = *f.inspector;
  // The receiver may acknowledge the rewritten stream up to what it was sent (the gateway's own
  // insertions included) and the FIN after it.
  const uint64_t sent = in.edits(rev).to_rewritten_after(in.frontier(rev));
  const int64_t acked = rd.space.signed_offset(v.ack, in.edits(rev).to_rewritten(in.frontier(rev)));
  return acked > static_cast<int64_t>(sent) + 1;
}

void Pipeline::Impl::track_close(Flow& f, const flow::FlowKey& key, Dir dir,
                                 const net::PacketView& v, const PacketVerdict& verdict) {
  // Closing is counted once, on the transition, and never undone by a late FIN.
  if (f.state == FlowState::kClosed || f.reset) return;
  FlowDirection& fd = f.dirs[index(dir)];
  const bool over = f.inspector && f.inspector->finished();  // positions no longer followed
  if (v.flags & net::kTcpRst) {
    bool exact = over;
    if (!f.inspector) {
      // Before the handshake: the answer to the SYN (its ack), or the client giving up.
      exact = dir == Dir::kServerToClient
                  ? (v.flags & net::kTcpAck) && v.ack == f.handshake.client_isn() + 1
                  : v.seq == f.handshake.client_isn() + 1;
    } else if (!over) {
      exact = tcp::rst_exact(v.seq, fd.space.seq(f.inspector->frontier(dir)));
    }
    if (!exact) {
      // In the window but not exact, the receiver answers with a challenge ACK and keeps the
      // connection (RFC 5961); out of the window it ignores it. Forwarded, state kept.
      counters.add(Counter::tcp_rst_ignored);
      return;
    }
    f.state = FlowState::kClosed;
    counters.add(Counter::flows_closed);
    force_all(f, key);
    return;
  }
  if ((v.flags & net::kTcpFin) && !fd.fin) {
    const bool placed =
        over || (f.inspector && verdict.kind != VerdictKind::kDrop &&
                 tcp::fin_in_place(fd.space.offset(v.seq, f.inspector->frontier(dir)),
                                   v.payload_len, f.inspector->frontier(dir)));
    if (!placed) {
      counters.add(Counter::tcp_fin_ignored);
      return;
    }
    if (note_fin(f, dir)) force_all(f, key);
  }
}

bool Pipeline::Impl::note_fin(Flow& f, Dir dir) {
  f.dirs[index(dir)].fin = true;
  if (!f.dirs[0].fin || !f.dirs[1].fin) {
    f.state = FlowState::kClosing;
    return false;
  }
  f.state = FlowState::kClosed;
  counters.add(Counter::flows_closed);
  return true;
}

bool Pipeline::Impl::raise(Flow& f, policy::Exception e, Dir d, std::string detail) {
  return f.inspector->raise(e, d, std::move(detail)) == policy::ExceptionAction::kPass;
}

void Pipeline::Impl::note_ack(Flow& f, const flow::FlowKey& key, Dir from,
                              const net::PacketView& v) {
  FlowDirection& fd = f.dirs[index(from)];
  if (!fd.ack_seen || static_cast<int32_t>(v.ack - fd.last_ack) > 0) fd.last_ack = v.ack;
  fd.ack_seen = true;
  const Dir rev = smtp::opposite(from);
  const FlowDirection& rd = f.dirs[index(rev)];
  if (!rd.space.known()) return;
  FlowInspector& in = *f.inspector;
  // The receiver acknowledges rewritten offsets of the reverse stream.
  const uint64_t near = in.edits(rev).to_rewritten(in.frontier(rev));
  const uint64_t acked = rd.space.offset(v.ack, near);
  in.on_ack(rev, acked);
  if (rev == Dir::kServerToClient && !f.owed.empty()) {
    std::erase_if(f.owed, [acked](const OwedReply& o) { return o.rw_end() <= acked; });
    if (f.owed.empty()) forget_owing(key);
  }
}

void Pipeline::Impl::take_gateway_replies(Flow& f, const flow::FlowKey& key, Timestamp now) {
  FlowInspector& in = *f.inspector;
  const Dir s2c = Dir::kServerToClient;
  for (uint64_t pos : in.take_gateway_replies()) {
    // A server segment that carries the byte at `pos` carries the insertion too; only when the
    // server has sent nothing there yet does the gateway send it itself.
    if (pos < in.frontier(s2c)) continue;
    const rewrite::EditList& e = in.edits(s2c);
    std::erase_if(f.owed, [pos](const OwedReply& o) { return o.pos == pos; });
    OwedReply o;
    o.pos = pos;
    o.rw_start = e.to_rewritten(pos);
    o.bytes = e.inserted_at(pos);  // every insertion at pos: answers to consecutive commands
    o.rto = kInjectRto;
    if (f.owed.empty()) owing.push_back(key);
    f.owed.push_back(std::move(o));
    send_owed(f, f.owed.back(), now);
  }
}

void Pipeline::Impl::send_owed(Flow& f, OwedReply& o, Timestamp now) {
  inject(answer_segment(f, o));
  counters.add(o.tries == 0 ? Counter::inject_segments : Counter::inject_retransmits);
  ++o.tries;
  o.deadline = now + o.rto;
  o.rto = std::min(o.rto * 2, kInjectRtoMax);
}

void Pipeline::Impl::inject(std::vector<uint8_t> bytes) {
  injected_bytes.push_back(std::move(bytes));
  if (out) out->injected.push_back(Injection{injected_bytes.back()});
}

void Pipeline::Impl::reset_flow(Flow& f, const flow::FlowKey& key) {
  if (f.reset) return;
  // Nothing held goes out any more: what the policy refused must not reach the server.
  for (Dir d : kDirs) {
    FlowDirection& fd = f.dirs[index(d)];
    for (const HeldPacket& h : fd.held) {
      counters.add(Counter::verdict_drop);
      if (out) out->released.push_back(Release{h.packet_id, VerdictKind::kDrop, {}, 0});
    }
    fd.held.clear();
    held_total -= fd.held_bytes;
    fd.held_bytes = 0;
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
    if (f.dirs[0].space.known() && f.dirs[1].space.known()) {
      for (Dir d : kDirs) inject(reset_segment(f, d));
      counters.add(Counter::resets_sent, 2);
    }
    counters.add(Counter::flows_reset);
  }
  f.reset = true;
  decide(f, policy::Event::kFlowReset, silent ? "drop-connection" : "reset", Dir::kClientToServer);
  if (f.state != FlowState::kClosed) {
    f.state = FlowState::kClosed;
    counters.add(Counter::flows_closed);
  }
}

void Pipeline::Impl::decide(const Flow& f, policy::Event e, std::string_view action, Dir d) {
  if (!out) return;
  Decision x;
  x.event = e;
  x.action = action;
  x.dir = d;
  x.client = f.client_addr;
  x.server = f.server_addr;
  x.client_port = f.client_port;
  x.server_port = f.server_port;
  out->decisions.push_back(std::move(x));
}

void Pipeline::Impl::flush_decisions(Flow& f) {
  if (!f.inspector) return;
  std::vector<Decision> taken = f.inspector->take_decisions();
  if (!out) return;
  for (Decision& x : taken) {
    x.client = f.client_addr;
    x.server = f.server_addr;
    x.client_port = f.client_port;
    x.server_port = f.server_port;
    out->decisions.push_back(std::move(x));
  }
}

PacketVerdict Pipeline::Impl::answer_after_reset(Flow& f, const net::PacketView& v) {
  // An endpoint that did not take the first RST (it was in flight, or the sequence number was
  // not exactly the one expected and it sent a challenge ACK) says here what it expects.
  if (!(v.flags & net::kTcpRst) && (v.flags & net::kTcpAck) && f.reset_answers > 0) {
    --f.reset_answers;
    inject(reset_reply(v));
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
PacketVerdict Pipeline::Impl::refuse_unmappable(const net::PacketView& v) {
  counters.add(Counter::flows_reset_unmappable);
  if (!(v.flags & net::kTcpRst)) {
    if (v.flags & net::kTcpAck) {
      inject(reset_reply(v));
      counters.add(Counter::resets_sent);
    }
    inject(reset_onward(v));
    counters.add(Counter::resets_sent);
  }
  if (out) {
    // Roles are unknown without the handshake: "client" is the packet's sender.
    Decision x;
    x.event = policy::Event::kFlowReset;
    x.action = "reset";
    x.client = v.src;
    x.server = v.dst;
    x.client_port = v.src_port;
    x.server_port = v.dst_port;
    x.subject = "unmappable";
    x.detail = "conntrack marks the connection mapped; its deltas died with an earlier daemon";
    out->decisions.push_back(std::move(x));
  }
  return drop();
}

PacketVerdict Pipeline::Impl::emit(Flow& f, Dir d, std::span<uint8_t> packet,
                                   const net::PacketView& v, std::vector<uint8_t>& storage) {
  if (f.inspector->reset_requested()) return drop();  // the flow is being reset
  if (!f.owed.empty() && d == Dir::kServerToClient && v.payload_len > 0) {
    // A server segment from an owed position on carries the inserted bytes itself now.
    const uint64_t a = stream_offset(f, d, v.seq);
    std::erase_if(f.owed,
                  [a, &v](const OwedReply& o) { return o.pos >= a && o.pos < a + v.payload_len; });
  }
  if (((v.flags & net::kTcpUrg) || v.urgent != 0) && !f.urgent_logged) {
    // map_packet clears it (tcp_urgent_cleared counts every segment); logged once per flow.
    f.urgent_logged = true;
    decide(f, policy::Event::kUrgentCleared, "normalise", d);
  }
  const MappedPacket m = map_packet(f, d, packet, v, storage, counters);
  switch (m.outcome) {
    case MapOutcome::kUnchanged:
      return accept();
    case MapOutcome::kRewritten:
      counters.add(Counter::verdict_modified);
      return {VerdictKind::kAcceptModified, 0, m.bytes};
    case MapOutcome::kTooLong:
      break;
  }
  // Cannot be forwarded mapped, must not be forwarded unmapped.
  f.inspector->request_reset();
  return drop();
}

Flow* Pipeline::Impl::insert_flow(const flow::FlowKey& k, Timestamp now) {
  Flow* f = table.insert(
      k, now, idle_timeout(FlowState::kSynSent),
      [this](const flow::FlowKey& key, Flow& evicted) {
        counters.add(Counter::flows_evicted);
        force_all(evicted, key);
        forget_pending(evicted);
        forget_owing(key);
      },
      // A full table loses half-open, closed and uninspected flows first: a
      // SYN flood must not push out the sessions under inspection (their
      // next packets would pass uninspected, picked up mid-stream).
      [](const Flow& candidate) {
        return !candidate.inspector || candidate.reset || candidate.state == FlowState::kClosed ||
               candidate.state == FlowState::kPassthrough;
      });
  counters.add(Counter::flows_created);
  return f;
}

Flow* Pipeline::Impl::start_flow(const flow::KeyedPacket& kp, const net::PacketView& v,
                                 Timestamp now, uint32_t in_interface) {
  Flow* f = insert_flow(kp.key, now);
  f->client_is_lo = kp.src_is_lo;
  f->client_addr = v.src;
  f->server_addr = v.dst;
  f->client_port = v.src_port;
  f->server_port = v.dst_port;
  f->handshake.on_syn(v.seq);
  f->interfaces.bind(index(Dir::kClientToServer), in_interface);
  f->dirs[index(Dir::kClientToServer)].space = tcp::SeqSpace(v.seq);
  f->state = FlowState::kSynSent;
  return f;
}

PacketVerdict Pipeline::Impl::midstream(const flow::KeyedPacket& kp, const net::PacketView& v,
                                        Timestamp now) {
  counters.add(Counter::packets_not_tracked);
  // A RST carries nothing a receiver reads, and lets the ends of a forgotten connection clean
  // up: it goes on, and starts nothing.
  if (v.flags & net::kTcpRst) return accept();
  const policy::Exception e = policy::Exception::kMidstream;
  const policy::ExceptionAction action = config.exceptions.of(e);
  counters.add(exception_counter(e));
  // Without the handshake the dialogue's phase is unknown (a DATA body looks like commands):
  // the flow can be passed untouched or refused, never inspected.
  Flow* f = nullptr;
  if (action != policy::ExceptionAction::kDropPacket) {
    f = insert_flow(kp.key, now);
    counters.add(Counter::flows_midstream);
    f->state = FlowState::kPassthrough;
    table.touch(*f, now, idle_timeout(*f));
  }
  if (out) {
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
    out->decisions.push_back(std::move(x));
  }
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
    inject(reset_reply(v));
    counters.add(Counter::resets_sent);
  }
  inject(reset_onward(v));
  counters.add(Counter::resets_sent);
  counters.add(Counter::flows_reset);
  return drop();
}

PacketVerdict Pipeline::Impl::refuse_truncated(std::span<const uint8_t> packet) {
  // Only the headers are read, from a copy whose IP length says "what was copied".
  std::vector<uint8_t> head(
      packet.begin(),
      packet.begin() + static_cast<ptrdiff_t>(std::min<size_t>(packet.size(), 512)));
  if (head.size() >= 40 && (head[0] >> 4) == 6) {
    const size_t n = head.size() - 40;
    head[4] = static_cast<uint8_t>(n >> 8);
    head[5] = static_cast<uint8_t>(n);
  } else if (head.size() >= 20 && (head[0] >> 4) == 4) {
    head[2] = static_cast<uint8_t>(head.size() >> 8);
    head[3] = static_cast<uint8_t>(head.size());
  }
  const policy::Exception e = policy::Exception::kTruncated;
  const auto v = net::parse_packet(head);
  Flow* f = v ? table.find(flow::canonical_key(*v).key) : nullptr;
  if (!v || !f || !f->inspector || f->reset) {
    // Nothing inspected to protect (or nothing to tell whose it is): never passed uninspected.
    counters.add(exception_counter(e));
    if (!v) counters.add(Counter::packets_invalid);
    return drop();
  }
  const flow::KeyedPacket kp = flow::canonical_key(*v);
  const Dir dir = kp.src_is_lo == f->client_is_lo ? Dir::kClientToServer : Dir::kServerToClient;
  const bool mapped = f->inspector->edits(Dir::kClientToServer).ever_resized() ||
                      f->inspector->edits(Dir::kServerToClient).ever_resized();
  switch (f->inspector->raise(e, dir, "the kernel copied only part of the packet")) {
    case policy::ExceptionAction::kDropPacket:
      flush_decisions(*f);
      return drop();
    case policy::ExceptionAction::kPass:
      if (!mapped) {
        // The operator's explicit choice: the packet goes on as it is (never as a payload).
        flush_decisions(*f);
        return accept();
      }
      // Its bytes would reach the receiver unmapped: never.
      f->inspector->request_reset();
      break;
    case policy::ExceptionAction::kReject:
    case policy::ExceptionAction::kDropFlow:
      break;
  }
  reset_flow(*f, kp.key);
  flush_decisions(*f);
  return drop();
}

PacketVerdict Pipeline::Impl::handle_data(Flow& f, const flow::FlowKey& key, Dir dir, uint32_t id,
                                          std::span<uint8_t> packet, const net::PacketView& v,
                                          Timestamp now) {
  FlowInspector& in = *f.inspector;
  in.set_now(now);
  FlowDirection& fd = f.dirs[index(dir)];
  const uint64_t frontier = in.frontier(dir);
  if (fd.space.signed_offset(v.seq, frontier) < 0) {
    // Bytes before the stream's first (ISN + 1): a receiver trims them and reads the rest,
    // which placed at offset 0 would be inspected shifted. No sender does this.
    raise(f, policy::Exception::kUnplaceable, dir, "payload before the stream's start");
    return drop();
  }
  const uint64_t start = fd.space.offset(v.seq, frontier);
  const uint64_t end = start + v.payload_len;
  auto payload = packet.subspan(v.payload_offset, v.payload_len);

  if (start > frontier) {
    // A hole before this segment: what is missing could change how these bytes read, so they
    // are not inspected yet. The segment is held (bounded) and inspected when the hole fills;
    // dropping it would throw away everything in flight behind a single lost segment.
    counters.add(Counter::segments_out_of_order);
    if (!can_hold(fd, packet.size())) {
      // Never forwarded uninspected, whatever the policy: the sender retransmits it.
      raise(f, policy::Exception::kHoldLimit, dir, "segment beyond a hole over the hold limits");
      return drop();
    }
    if (!within_budget(f, packet.size(), now)) {
      note_budget(f, dir, "drop");
      raise(f, policy::Exception::kMemoryBudget, dir, "byte budget full");
      return drop();
    }
    hold(f, key, fd,
         HeldPacket{id, start, end, now + config.hold_timeout, false,
                    std::vector<uint8_t>(packet.begin(), packet.end())});
    return {VerdictKind::kHold, 0};
  }
  const bool matches = in.matches_seen(dir, start, payload);
  if (!matches && std::max(start, in.edits(dir).acked_original()) < in.retained_from(dir)) {
    // Its bytes were let go (budget, or more than kSeenCap unacknowledged): what cannot be
    // compared is not forwarded. Not a conflict: nothing says the bytes differ.
    counters.add(Counter::retransmissions_unverifiable);
    return drop();
  }
  if (!matches) {
    // Overlaps what was inspected with other bytes: the receiver could read something that was
    // never inspected. The first copy wins; this one is dropped.
    counters.add(Counter::segments_overlap_conflict);
    decide(f, policy::Event::kOverlapConflict, "drop", dir);
    return drop();
  }
  if (end > frontier) {
    // New bytes are retained, and the packet may be held: both must fit in the budget, or the
    // segment goes before it is inspected (the sender sends it again; nothing is lost).
    if (!within_budget(f, static_cast<size_t>(end - frontier) + packet.size(), now)) {
      note_budget(f, dir, "drop");
      // pass: the connection is no longer inspected, so nothing of it is retained either.
      if (!raise(f, policy::Exception::kMemoryBudget, dir, "byte budget full")) return drop();
    }
    in.on_data(dir, payload.subspan(static_cast<size_t>(frontier - start)));
    feed_held(f, dir);
    account_pending(f);
    release_ready(f, key);
  } else if (end > in.decided_until(dir)) {
    // A retransmission of bytes we still hold: the held original goes out when decided.
    counters.add(Counter::retransmissions_dropped);
    return drop();
  }

  if (end > in.decided_until(dir)) {
    if (!can_hold(fd, packet.size())) {
      counters.add(Counter::hold_overflows);
      in.force_decide(dir);
      release_ready(f, key);
    } else {
      hold(f, key, fd,
           HeldPacket{id, start, end, now + config.hold_timeout, true,
                      std::vector<uint8_t>(packet.begin(), packet.end())});
      return {VerdictKind::kHold, 0};
    }
  }
  return emit(f, dir, packet, v, current);
}

bool Pipeline::Impl::within_budget(Flow& f, size_t more, Timestamp now) {
  const size_t budget = config.memory_budget;
  if (budget == 0 || budget_used() + more <= budget) return true;
  pool.trim();
  if (budget_used() + more <= budget || now < no_victim_until)
    return budget_used() + more <= budget;
  // The flow retaining the most lets go of its retained bytes - unless that is this flow: a
  // flow that retains the most waits for its acknowledgements instead (its segment is dropped).
  // Only a flow holding more than this one is a victim, so one peer withholding its acks
  // cannot take the memory of the flows that behave. One scan of the table, then at most one
  // every 10 ms while none qualifies.
  std::optional<flow::FlowKey> victim_key;
  size_t most = f.inspector ? f.inspector->retained_bytes_held() : 0;
  table.for_each([&](const flow::FlowKey& key, const Flow& g) {
    if (!g.inspector || &g == &f) return;
    const size_t held = g.inspector->retained_bytes_held();
    if (held > most) {
      most = held;
      victim_key = key;
    }
  });
  Flow* victim = victim_key ? table.find(*victim_key) : nullptr;
  if (!victim) {
    no_victim_until = now + milliseconds(10);
    return false;
  }
  const size_t freed = victim->inspector->release_retained();
  pool.trim();
  counters.add(Counter::budget_releases);
  counters.add(Counter::budget_released_bytes, freed);
  note_budget(*victim, Dir::kClientToServer, "release");
  return budget_used() + more <= budget;
}

void Pipeline::Impl::note_budget(Flow& f, Dir d, std::string_view action) {
  // A dropped segment is the memory-budget exception's to log (its policy decides).
  if (action == "drop") {
    counters.add(Counter::budget_drops);
    return;
  }
  // Once per flow: a flow kept at the budget would log every segment (the log is rate-limited
  // too, all workers together).
  if (f.budget_logged) return;
  f.budget_logged = true;
  decide(f, policy::Event::kMemoryBudget, action, d);
}

bool Pipeline::Impl::can_hold(const FlowDirection& fd, size_t bytes) const {
  return fd.held.size() < config.max_held_packets_per_flow &&
         fd.held_bytes + bytes <= config.max_held_bytes_per_flow;
}

void Pipeline::Impl::hold(Flow& f, const flow::FlowKey& key, FlowDirection& fd, HeldPacket h) {
  if (!holds(f)) holding.push_back(key);
  fd.held_bytes += h.bytes.size();
  held_total += h.bytes.size();
  fd.held.push_back(std::move(h));
  counters.add(Counter::holds);
}

void Pipeline::Impl::feed_held(Flow& f, Dir d) {
  // Segments held beyond a hole, in whatever order they came, as the hole closes.
  FlowDirection& fd = f.dirs[index(d)];
  for (bool progress = true; progress;) {
    progress = false;
    for (HeldPacket& h : fd.held) {
      const uint64_t frontier = f.inspector->frontier(d);
      if (h.fed || h.start > frontier) continue;
      h.fed = true;
      progress = true;
      const auto view = net::parse_packet(h.bytes);
      auto payload =
          view ? std::span<const uint8_t>(h.bytes).subspan(view->payload_offset, view->payload_len)
               : std::span<const uint8_t>();
      // Compared even when another segment brought all of its bytes meanwhile: it is released
      // before that segment leaves, so a receiver would take ITS bytes where they differ.
      if (!view || !f.inspector->matches_seen(d, h.start, payload)) {
        counters.add(Counter::segments_overlap_conflict);
        decide(f, policy::Event::kOverlapConflict, "drop", d);
        h.conflict = true;
        continue;
      }
      if (h.end <= frontier) continue;  // its bytes came in another segment meanwhile
      f.inspector->on_data(d, payload.subspan(static_cast<size_t>(frontier - h.start)));
    }
  }
}

void Pipeline::Impl::drop_unfed(Flow& f, Dir d, Timestamp deadline) {
  // Beyond a hole that did not close in time (or the flow is going away): never inspected, so
  // never forwarded. The sender retransmits.
  auto& held = f.dirs[index(d)].held;
  for (auto it = held.begin(); it != held.end();) {
    if (it->fed || it->deadline > deadline) {
      ++it;
      continue;
    }
    f.dirs[index(d)].held_bytes -= it->bytes.size();
    held_total -= it->bytes.size();
    counters.add(Counter::verdict_drop);
    if (out) out->released.push_back(Release{it->packet_id, VerdictKind::kDrop, {}, 0});
    it = held.erase(it);
  }
}

void Pipeline::Impl::release_ready(Flow& f, const flow::FlowKey& key) {
  const bool held_before = holds(f);
  for (Dir d : kDirs) {
    FlowDirection& fd = f.dirs[index(d)];
    // Inspected packets whose bytes are all decided leave in the order they came; a packet
    // still waiting behind a hole does not hold up the ones after it.
    for (auto it = fd.held.begin(); it != fd.held.end();) {
      if (!it->fed || (!it->conflict && it->end > f.inspector->decided_until(d))) {
        ++it;
        continue;
      }
      HeldPacket h = std::move(*it);
      it = fd.held.erase(it);
      fd.held_bytes -= h.bytes.size();
      held_total -= h.bytes.size();
      if (h.conflict) {
        counters.add(Counter::verdict_drop);
        if (out) out->released.push_back(Release{h.packet_id, VerdictKind::kDrop, {}, 0});
        continue;
      }
      Release r;
      r.packet_id = h.packet_id;
      r.kind = VerdictKind::kAccept;
      released_bytes.emplace_back();
      const auto view = net::parse_packet(h.bytes);  // parsed once before: cannot fail
      if (view) {
        const PacketVerdict pv = emit(f, d, h.bytes, *view, released_bytes.back());
        r.kind = pv.kind;
        // Unless rendered into a buffer of its own, the packet's own bytes go out (changed in
        // place or not: tests and logs read them either way).
        if (pv.kind != VerdictKind::kAcceptModified || pv.bytes.data() == h.bytes.data())
          released_bytes.back() = std::move(h.bytes);
        if (pv.kind != VerdictKind::kDrop) r.bytes = released_bytes.back();
        // A FIN that waited beyond a hole counts now that it leaves in order (track_close
        // ignored it when it came out of place).
        if (pv.kind != VerdictKind::kDrop && (view->flags & net::kTcpFin) && !fd.fin &&
            f.state != FlowState::kClosed && !f.reset && h.end == f.inspector->frontier(d))
          note_fin(f, d);
      } else {
        counters.add(Counter::verdict_accept);
      }
      counters.add(Counter::hold_releases);
      if (out) out->released.push_back(r);
    }
  }
  if (held_before && !holds(f)) forget_holding(key);
}

void Pipeline::Impl::force_all(Flow& f, const flow::FlowKey& key) {
  if (!f.inspector) return;
  for (Dir d : kDirs) {
    drop_unfed(f, d, Timestamp::max());
    if (!f.dirs[index(d)].held.empty()) f.inspector->force_decide(d);
  }
  release_ready(f, key);
  if (!holds(f)) forget_holding(key);
  flush_decisions(f);
}

void Pipeline::on_timer(Timestamp now, Output& released) {
  Impl& m = *impl_;
  m.released_bytes.clear();
  m.injected_bytes.clear();
  m.out = &released;
  const std::vector<flow::FlowKey> keys = m.holding;
  for (const flow::FlowKey& key : keys) {
    Flow* f = m.table.find(key);
    if (!f) {
      m.forget_holding(key);
      continue;
    }
    for (Dir d : kDirs) {
      m.drop_unfed(*f, d, now);
      for (const HeldPacket& h : f->dirs[index(d)].held)
        if (h.fed && h.deadline <= now) {
          f->inspector->force_decide(d);
          break;
        }
    }
    m.release_ready(*f, key);
    if (!m.holds(*f)) m.forget_holding(key);
    m.flush_decisions(*f);
  }
  const std::vector<flow::FlowKey> owing = m.owing;
  for (const flow::FlowKey& key : owing) {
    Flow* f = m.table.find(key);
    if (!f || f->owed.empty()) {
      m.forget_owing(key);
      continue;
    }
    for (OwedReply& o : f->owed) {
      if (o.deadline > now) continue;
      if (o.tries >= kMaxTries) {
        m.counters.add(Counter::inject_gave_up);
        f->inspector->request_reset();
        m.reset_flow(*f, key);
        break;
      }
      m.send_owed(*f, o, now);
    }
  }
  if (now >= m.next_expiry) {
    m.table.expire(now, 1024, [&m](const flow::FlowKey& key, Flow& f) {
      m.counters.add(Counter::flows_expired);
      m.force_all(f, key);
      m.forget_pending(f);
      m.forget_holding(key);
      m.forget_owing(key);
    });
    m.next_expiry = now + seconds(1);
  }
}

Timestamp Pipeline::next_deadline() const {
  const Impl& m = *impl_;
  Timestamp t = m.next_expiry;
  for (const flow::FlowKey& key : m.holding) {
    const Flow* f = m.table.find(key);
    if (!f) continue;
    for (const FlowDirection& fd : f->dirs)
      for (const HeldPacket& h : fd.held) t = std::min(t, h.deadline);
  }
  for (const flow::FlowKey& key : m.owing) {
    const Flow* f = m.table.find(key);
    if (!f) continue;
    for (const OwedReply& o : f->owed) t = std::min(t, o.deadline);
  }
  return t;
}

void Pipeline::drain(Timestamp, Output& released) {
  Impl& m = *impl_;
  m.released_bytes.clear();
  m.injected_bytes.clear();
  m.out = &released;
  const std::vector<flow::FlowKey> keys = m.holding;
  for (const flow::FlowKey& key : keys) {
    if (Flow* f = m.table.find(key)) m.force_all(*f, key);
  }
  m.holding.clear();
  // A connection whose sequence numbers are mapped cannot outlive the daemon: nobody would map
  // them any more, and its endpoints would read each other's numbers off by the delta. It is
  // reset both ways instead of being left to stall or be misread. Zero-delta connections go on
  // untouched (a new daemon picks them up mid-stream).
  std::vector<flow::FlowKey> mapped;
  m.table.for_each([&mapped](const flow::FlowKey& key, const Flow& f) {
    if (f.reset || !f.inspector || f.state == FlowState::kClosed) return;
    if (f.inspector->edits(Dir::kClientToServer).ever_resized() ||
        f.inspector->edits(Dir::kServerToClient).ever_resized() || !f.owed.empty())
      mapped.push_back(key);
  });
  for (const flow::FlowKey& key : mapped) {
    Flow* f = m.table.find(key);
    if (!f) continue;
    f->inspector->request_reset();
    m.reset_flow(*f, key);
    m.counters.add(Counter::flows_reset_at_exit);
  }
}

}  // namespace sg::core
