#include "core/pipeline.hpp"

#include <algorithm>

#include "core/pipeline_impl.hpp"
#include "net/checksum.hpp"
#include "net/forge.hpp"

namespace sg::core {
namespace {

// The idle-flow sweep (on_timer): flows examined per call, and how soon the next call comes.
constexpr size_t kExpireScan = 1024;
constexpr Duration kExpireInterval = seconds(1);
constexpr Duration kExpireBacklogInterval = milliseconds(10);

}  // namespace

Pipeline::Pipeline(PipelineConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Pipeline::~Pipeline() = default;

void Pipeline::set_policies(std::shared_ptr<const policy::PolicySet> policies) {
  impl_->config.policies = std::move(policies);
}
const Counters& Pipeline::counters() const {
  return impl_->counters;
}
bool Pipeline::has_held_packets() const {
  return !impl_->holding.empty();
}
size_t Pipeline::budget_used() const {
  return impl_->budget.used();
}

size_t Pipeline::flow_count() const {
  return impl_->table.size();
}

size_t Pipeline::summarize_flows(std::vector<FlowSummary>& out, size_t max) const {
  const Impl& m = *impl_;
  size_t added = 0;
  m.table.for_each([&](const flow::FlowKey& key, const InspectedFlow& f) {
    if (added >= max) return;
    ++added;
    out.push_back(summarize(key, f, m.table.deadline_of(f)));
  });
  return m.table.size();
}

PacketVerdict Pipeline::process(uint32_t packet_id, std::span<uint8_t> packet,
                                bool /*checksum_not_ready*/, Timestamp now, Output& out,
                                PacketMeta meta) {
  // CSUMNOTREADY needs no handling here: an unmodified packet goes back as it came, and a
  // modified one gets complete checksums computed from scratch.
  Outbox box = impl_->begin(out);
  return impl_->process(packet_id, packet, now, meta, box);
}

// The data path, top-down: parse -> look up -> track TCP -> inspect -> release held -> map ->
// verdict. Every packet of a flow that gets this far counts as its activity (one touch).
PacketVerdict Pipeline::Impl::process(uint32_t id, std::span<uint8_t> packet, Timestamp now,
                                      PacketMeta meta, Outbox& box) {
  counters.add(Counter::packets);
  counters.add(Counter::bytes, packet.size());
  if (meta.truncated) return refuse_truncated(packet, box);
  const auto parsed = parse(packet, meta);
  if (!parsed) return drop();
  const net::PacketView& v = *parsed;
  const flow::KeyedPacket kp = flow::canonical_key(v);
  PacketVerdict verdict{};
  InspectedFlow* f = look_up(kp, v, meta, now, box, verdict);
  if (!f) return verdict;  // refused, or not followed (its verdict is set)
  const Dir dir = static_cast<Dir>(f->side_of(kp));

  if (f->reset) {
    verdict = answer_after_reset(*f, v, box);
  } else if (f->conn.state() == tcp::ConnectionState::kPassthrough) {
    verdict = accept();
  } else if (!track_tcp(*f, kp.key, dir, packet, v, meta.in_interface)) {
    return drop();  // not a packet its receiver would take: the flow does not see it
  } else if (v.payload_len > 0 && (!f->inspector || !f->conn.handshake().complete())) {
    // Data before the handshake completed (TCP Fast Open, or a server byte before the client
    // confirmed which SYN-ACK it took): nothing to place it in.
    counters.add(Counter::packets_not_tracked);
    verdict = drop();
  } else if (!f->inspector) {
    verdict = accept();  // the handshake, or its RST
    track_close(*f, kp.key, dir, v, verdict, box);
  } else {
    verdict = v.payload_len > 0 ? handle_data(*f, kp.key, dir, id, packet, v, now, box)
                                : emit(*f, dir, packet, v, current, box);
    verdict = conclude(*f, kp.key, dir, v, verdict, now, box);
  }
  table.touch(*f, now, idle_timeout(*f));
  return verdict;
}

// After inspection and mapping: the gateway's answers, decisions, the mapped report, a reset
// the policy asked for, close, and the done mark.
PacketVerdict Pipeline::Impl::conclude(InspectedFlow& f, const flow::FlowKey& key, Dir dir,
                                       const net::PacketView& v, PacketVerdict verdict,
                                       Timestamp now, Outbox& box) {
  take_gateway_replies(f, key, now, box);
  flush_decisions(f, box);
  if (!f.mapped_reported && f.mapped()) {
    f.mapped_reported = true;
    counters.add(Counter::flows_mapped);
    box.mapped(MappedFlow{f.client_addr, f.server_addr, f.client_port, f.server_port});
  }
  if (f.inspector->reset_requested()) {
    // emit() forwards nothing once a reset is asked for; a packet held a moment ago was
    // dropped with the others, through a release.
    reset_flow(f, key, box);
    return verdict;
  }
  track_close(f, key, dir, v, verdict, box);
  if (f.inspector->finished() && config.done_mark != 0 && f.owed.empty() && !f.mapped() &&
      verdict.kind != VerdictKind::kHold && verdict.kind != VerdictKind::kDrop) {
    // Bypass only flows whose numbers need no mapping: a mapped flow's packets must keep
    // coming here for the rest of the connection.
    verdict.mark = config.done_mark;
    f.done_marked = true;
  }
  return verdict;
}

std::optional<net::PacketView> Pipeline::Impl::parse(std::span<const uint8_t> packet,
                                                     const PacketMeta& meta) {
  auto v = net::parse_packet(packet);
  if (!v) {
    // What we cannot parse we cannot inspect: it never reaches the server.
    counters.add(Counter::packets_invalid);
    return std::nullopt;
  }
  if (meta.checksum_unverified && !net::tcp_checksum_ok(packet, *v)) {
    // The receiver drops it; it must not move the gateway's state either (a RST with a wrong
    // checksum would close the flow here and nowhere else).
    counters.add(Counter::tcp_bad_checksum);
    return std::nullopt;
  }
  return *v;
}

InspectedFlow* Pipeline::Impl::look_up(const flow::KeyedPacket& kp, const net::PacketView& v,
                                       const PacketMeta& meta, Timestamp now, Outbox& box,
                                       PacketVerdict& refused) {
  InspectedFlow* f = table.find(kp.key);
  const bool syn_only = (v.flags & (net::kTcpSyn | net::kTcpAck | net::kTcpRst)) == net::kTcpSyn;
  if (f && syn_only && f->conn.is_new_syn(v.seq)) {
    // A new connection on the 4-tuple of an old one: it has a new ISN. Only an old connection
    // that is over makes room for it: a SYN never erases a live inspected flow (anyone who can
    // send one could otherwise wipe the state of a connection under inspection). A duplicate
    // or late copy of the first SYN (same ISN) goes on as any packet of the flow.
    // A FIN at its place counts (kClosing): the client that sends the SYN has closed or been
    // closed on, and reusing its port is what clients do after a server closes first.
    const bool over =
        f->reset || f->conn.winding_down() || !f->inspector || f->inspector->finished();
    if (!over) {
      counters.add(Counter::tcp_syn_refused);
      refused = drop();
      return nullptr;
    }
    forget(*f, kp.key, box);
    table.erase(kp.key);
    f = nullptr;
  }
  if (f) return f;
  if (meta.conntrack_mapped && !syn_only)
    refused = refuse_unmappable(v, box);
  else if (!syn_only)
    refused = midstream(kp, v, now, box);
  if (!syn_only) return nullptr;
  f = insert_flow(kp.key, now, idle_timeout(tcp::ConnectionState::kSynSent), box);
  f->set_ends(v, kp.src_is_lo);
  f->conn.open(v.seq, meta.in_interface);
  return f;
}

void Pipeline::Impl::forget(InspectedFlow& f, const flow::FlowKey& key, Outbox& box) {
  force_all(f, key, box);
  budget.forget_pending(f.pending_counted);
  forget_holding(key);
  forget_owing(key);
}

InspectedFlow* Pipeline::Impl::insert_flow(const flow::FlowKey& k, Timestamp now, Duration idle,
                                           Outbox& box) {
  InspectedFlow* f = table.insert(
      k, now, idle,
      [this, &box](const flow::FlowKey& key, InspectedFlow& evicted) {
        counters.add(Counter::flows_evicted);
        forget(evicted, key, box);
      },
      // A full table loses half-open, closed and uninspected flows first: a SYN flood must not
      // push out the sessions under inspection (their next packets would pass uninspected,
      // picked up mid-stream).
      [](const InspectedFlow& candidate) {
        return !candidate.inspector || candidate.reset ||
               candidate.conn.state() == tcp::ConnectionState::kClosed ||
               candidate.conn.state() == tcp::ConnectionState::kPassthrough;
      });
  counters.add(Counter::flows_created);
  return f;
}

void Pipeline::on_timer(Timestamp now, Output& out) {
  Impl& m = *impl_;
  Outbox box = m.begin(out);
  m.decide_overdue_holds(now, box);
  m.retransmit_owed(now, box);
  if (now >= m.next_expiry) {
    m.table.expire(now, kExpireScan, [&m, &box](const flow::FlowKey& key, InspectedFlow& f) {
      m.counters.add(Counter::flows_expired);
      m.forget(f, key, box);
    });
    // A sweep cut short goes on in 10 ms: 100k flows a second examined under a backlog (1,000
    // connections a second closing, each kept 10 s, would otherwise fill the table and evict
    // live flows), 1,024 at a time so that no call holds the worker up for long.
    m.next_expiry = now + (m.table.sweeping() ? kExpireBacklogInterval : kExpireInterval);
  }
}

Timestamp Pipeline::next_deadline() const {
  const Impl& m = *impl_;
  Timestamp t = m.next_expiry;
  for (const flow::FlowKey& key : m.holding)
    if (const InspectedFlow* f = m.table.find(key))
      for (const tcp::HoldQueue& q : f->held) t = std::min(t, q.earliest_deadline());
  for (const flow::FlowKey& key : m.owing)
    if (const InspectedFlow* f = m.table.find(key)) t = std::min(t, f->owed.earliest_deadline());
  return t;
}

void Pipeline::drain(Timestamp, Output& out) {
  Impl& m = *impl_;
  Outbox box = m.begin(out);
  for (const flow::FlowKey& key : std::vector<flow::FlowKey>(m.holding))
    if (InspectedFlow* f = m.table.find(key)) m.force_all(*f, key, box);
  m.holding.clear();
  // A connection whose sequence numbers are mapped cannot outlive the daemon: nobody would map
  // them any more, and its endpoints would read each other's numbers off by the delta. It is
  // reset both ways instead of being left to stall or be misread. Zero-delta connections go on
  // untouched (a new daemon picks them up mid-stream).
  std::vector<flow::FlowKey> mapped;
  m.table.for_each([&mapped](const flow::FlowKey& key, const InspectedFlow& f) {
    if (f.reset || !f.inspector || f.conn.state() == tcp::ConnectionState::kClosed) return;
    if (f.mapped() || !f.owed.empty()) mapped.push_back(key);
  });
  for (const flow::FlowKey& key : mapped) {
    InspectedFlow* f = m.table.find(key);
    if (!f) continue;
    f->inspector->request_reset();
    m.reset_flow(*f, key, box);
    m.counters.add(Counter::flows_reset_at_exit);
  }
}

}  // namespace sg::core
