// The pipeline's stream stages: a data segment placed in its direction's stream, inspected,
// held until its bytes are decided and released in order, within the byte budget; and the
// gateway's own answers, sent until acknowledged.
#include "core/gateway_segments.hpp"
#include "core/pipeline_impl.hpp"
#include "core/segment_mapper.hpp"

namespace sg::core {

PacketVerdict Pipeline::Impl::handle_data(InspectedFlow& f, const flow::FlowKey& key, Dir dir,
                                          uint32_t id, std::span<uint8_t> packet,
                                          const net::PacketView& v, Timestamp now, Outbox& box) {
  FlowInspector& in = *f.inspector;
  in.set_now(now);
  const tcp::SenderState& sender = f.sender(dir);
  const tcp::HoldQueue& queue = f.held[index(dir)];
  const uint64_t frontier = in.frontier(dir);
  if (sender.space.signed_offset(v.seq, frontier) < 0) {
    // Bytes before the stream's first (ISN + 1): a receiver trims them and reads the rest,
    // which placed at offset 0 would be inspected shifted. No sender does this.
    raise(f, policy::Exception::kUnplaceable, dir, "payload before the stream's start");
    return drop();
  }
  const uint64_t start = sender.space.offset(v.seq, frontier);
  const uint64_t end = start + v.payload_len;
  auto payload = packet.subspan(v.payload_offset, v.payload_len);
  auto held = [&](bool fed) {
    tcp::HeldPacket h{id, start, end, now + config.hold_timeout, fed, {}};
    h.bytes.assign(packet.begin(), packet.end());  // a copy of the whole IP packet
    return h;
  };

  if (start > frontier) {
    // A hole before this segment: what is missing could change how these bytes read, so they
    // are not inspected yet. The segment is held (bounded) and inspected when the hole fills;
    // dropping it would throw away everything in flight behind a single lost segment.
    counters.add(Counter::segments_out_of_order);
    if (!can_hold(queue, packet.size())) {
      // Never forwarded uninspected, whatever the policy: the sender retransmits it.
      raise(f, policy::Exception::kHoldLimit, dir, "segment beyond a hole over the hold limits");
      return drop();
    }
    if (!within_budget(f, packet.size(), now, box)) {
      counters.add(Counter::budget_drops);
      raise(f, policy::Exception::kMemoryBudget, dir, "byte budget full");
      return drop();
    }
    hold(f, key, dir, held(false));
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
    decide(f, policy::Event::kOverlapConflict, "drop", dir, box);
    return drop();
  }
  if (end > frontier) {
    // New bytes are retained, and the packet may be held: both must fit in the budget, or the
    // segment goes before it is inspected (the sender sends it again; nothing is lost).
    if (!within_budget(f, static_cast<size_t>(end - frontier) + packet.size(), now, box)) {
      counters.add(Counter::budget_drops);
      // pass: the connection is no longer inspected, so nothing of it is retained either.
      if (!raise(f, policy::Exception::kMemoryBudget, dir, "byte budget full")) return drop();
    }
    in.on_data(dir, payload.subspan(static_cast<size_t>(frontier - start)));
    feed_held(f, dir, box);
    account_pending(f);
    release_ready(f, key, box);
  } else if (end > in.decided_until(dir)) {
    // A retransmission of bytes we still hold: the held original goes out when decided.
    counters.add(Counter::retransmissions_dropped);
    return drop();
  }

  if (end > in.decided_until(dir)) {
    if (can_hold(queue, packet.size())) {
      hold(f, key, dir, held(true));
      return {VerdictKind::kHold, 0};
    }
    counters.add(Counter::hold_overflows);
    in.force_decide(dir);
    release_ready(f, key, box);
  }
  return emit(f, dir, packet, v, current, box);
}

bool Pipeline::Impl::within_budget(InspectedFlow& f, size_t more, Timestamp now, Outbox& box) {
  // The flow retaining the most lets go of its retained bytes - unless that is this flow: a
  // flow that retains the most waits for its acknowledgements instead (its segment is dropped).
  // Only a flow holding more than this one is a victim, so one peer withholding its acks
  // cannot take the memory of the flows that behave.
  return budget.fits(more, now, [&] {
    std::optional<flow::FlowKey> victim_key;
    size_t most = f.inspector ? f.inspector->retained_bytes_held() : 0;
    table.for_each([&](const flow::FlowKey& key, const InspectedFlow& g) {
      if (!g.inspector || &g == &f) return;
      const size_t retained = g.inspector->retained_bytes_held();
      if (retained > most) {
        most = retained;
        victim_key = key;
      }
    });
    InspectedFlow* victim = victim_key ? table.find(*victim_key) : nullptr;
    if (!victim) return false;
    counters.add(Counter::budget_releases);
    counters.add(Counter::budget_released_bytes, victim->inspector->release_retained());
    // Once per flow: a flow kept at the budget would log every segment (the log is
    // rate-limited too, all workers together).
    if (!victim->budget_logged) {
      victim->budget_logged = true;
      decide(*victim, policy::Event::kMemoryBudget, "release", Dir::kClientToServer, box);
    }
    return true;
  });
}

void Pipeline::Impl::hold(InspectedFlow& f, const flow::FlowKey& key, Dir d, tcp::HeldPacket h) {
  if (!f.holds()) holding.push_back(key);
  budget.add_held(h.bytes.size());
  f.held[index(d)].push(std::move(h));
  counters.add(Counter::holds);
}

void Pipeline::Impl::feed_held(InspectedFlow& f, Dir d, Outbox& box) {
  FlowInspector& in = *f.inspector;
  f.held[index(d)].feed_in_order(
      [&] { return in.frontier(d); },
      [&](tcp::HeldPacket& h) {
        const uint64_t frontier = in.frontier(d);
        const auto view = net::parse_packet(h.bytes);
        auto payload = view ? std::span<const uint8_t>(h.bytes).subspan(view->payload_offset,
                                                                        view->payload_len)
                            : std::span<const uint8_t>();
        // Compared even when another segment brought all of its bytes meanwhile: it is released
        // before that segment leaves, so a receiver would take ITS bytes where they differ.
        if (!view || !in.matches_seen(d, h.start, payload)) {
          counters.add(Counter::segments_overlap_conflict);
          decide(f, policy::Event::kOverlapConflict, "drop", d, box);
          h.conflict = true;
          return;
        }
        if (h.end <= frontier) return;  // its bytes came in another segment meanwhile
        in.on_data(d, payload.subspan(static_cast<size_t>(frontier - h.start)));
      });
}

void Pipeline::Impl::drop_unfed(InspectedFlow& f, Dir d, Timestamp deadline, Outbox& box) {
  // Beyond a hole that did not close in time (or the flow is going away): never inspected, so
  // never forwarded. The sender retransmits.
  budget.remove_held(f.held[index(d)].drop_unfed(deadline, [&](const tcp::HeldPacket& h) {
    counters.add(Counter::verdict_drop);
    box.drop_held(h.packet_id);
  }));
}

void Pipeline::Impl::release_ready(InspectedFlow& f, const flow::FlowKey& key, Outbox& box) {
  const bool held_before = f.holds();
  for (Dir d : kDirs) {
    const size_t side = index(d);
    budget.remove_held(f.held[side].take_ready(
        [&] { return f.inspector->decided_until(d); },
        [&](tcp::HeldPacket& h) {
          if (h.conflict) {
            counters.add(Counter::verdict_drop);
            box.drop_held(h.packet_id);
            return;
          }
          Release r{h.packet_id, VerdictKind::kAccept, {}, 0};
          std::vector<uint8_t>& bytes = box.release_buffer();
          const auto view = net::parse_packet(h.bytes);  // parsed once before: cannot fail
          if (view) {
            const PacketVerdict pv = emit(f, d, h.bytes, *view, bytes, box);
            r.kind = pv.kind;
            // Unless rendered into a buffer of its own, the packet's own bytes go out (changed
            // in place or not: tests and logs read them either way).
            if (pv.kind != VerdictKind::kAcceptModified || pv.bytes.data() == h.bytes.data())
              bytes = std::move(h.bytes);
            if (pv.kind != VerdictKind::kDrop) r.bytes = bytes;
            // A FIN that waited beyond a hole counts now that it leaves in order (track_close
            // ignored it when it came out of place).
            if (pv.kind != VerdictKind::kDrop && (view->flags & net::kTcpFin) &&
                !f.conn.sender(side).fin && f.conn.state() != tcp::ConnectionState::kClosed &&
                !f.reset && h.end == f.inspector->frontier(d) &&
                f.conn.fin_in_place(side) == tcp::CloseStep::kClosed)
              counters.add(Counter::flows_closed);
          } else {
            counters.add(Counter::verdict_accept);
          }
          counters.add(Counter::hold_releases);
          box.release(r);
        }));
  }
  if (held_before && !f.holds()) forget_holding(key);
}

void Pipeline::Impl::decide_overdue_holds(Timestamp now, Outbox& box) {
  for (const flow::FlowKey& key : std::vector<flow::FlowKey>(holding)) {
    InspectedFlow* f = table.find(key);
    if (!f) {
      forget_holding(key);
      continue;
    }
    for (Dir d : kDirs) {
      drop_unfed(*f, d, now, box);
      if (f->held[index(d)].fed_due(now)) f->inspector->force_decide(d);
    }
    release_ready(*f, key, box);
    if (!f->holds()) forget_holding(key);
    flush_decisions(*f, box);
  }
}

void Pipeline::Impl::force_all(InspectedFlow& f, const flow::FlowKey& key, Outbox& box) {
  if (!f.inspector) return;
  for (Dir d : kDirs) {
    drop_unfed(f, d, Timestamp::max(), box);
    if (!f.held[index(d)].empty()) f.inspector->force_decide(d);
  }
  release_ready(f, key, box);
  if (!f.holds()) forget_holding(key);
  flush_decisions(f, box);
}

PacketVerdict Pipeline::Impl::emit(InspectedFlow& f, Dir d, std::span<uint8_t> packet,
                                   const net::PacketView& v, std::vector<uint8_t>& storage,
                                   Outbox& box) {
  if (f.inspector->reset_requested()) return drop();  // the flow is being reset
  if (!f.owed.empty() && d == Dir::kServerToClient && v.payload_len > 0) {
    // A server segment from an owed position on carries the inserted bytes itself now.
    f.owed.carried(stream_offset(f, d, v.seq), v.payload_len);
  }
  if (((v.flags & net::kTcpUrg) || v.urgent != 0) && !f.urgent_logged) {
    // map_packet clears it (tcp_urgent_cleared counts every segment); logged once per flow.
    f.urgent_logged = true;
    decide(f, policy::Event::kUrgentCleared, "normalise", d, box);
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

void Pipeline::Impl::take_gateway_replies(InspectedFlow& f, const flow::FlowKey& key, Timestamp now,
                                          Outbox& box) {
  FlowInspector& in = *f.inspector;
  const Dir s2c = Dir::kServerToClient;
  for (uint64_t pos : in.take_gateway_replies()) {
    // A server segment that carries the byte at `pos` carries the insertion too; only when the
    // server has sent nothing there yet does the gateway send it itself.
    if (pos < in.frontier(s2c)) continue;
    const rewrite::EditList& e = in.edits(s2c);
    // Every insertion at pos: answers to consecutive commands.
    OwedReply& o = f.owed.add(pos, e.to_rewritten(pos), e.inserted_at(pos));
    if (f.owed.size() == 1) owing.push_back(key);
    send_owed(f, o, now, box);
  }
}

void Pipeline::Impl::retransmit_owed(Timestamp now, Outbox& box) {
  for (const flow::FlowKey& key : std::vector<flow::FlowKey>(owing)) {
    InspectedFlow* f = table.find(key);
    if (!f || f->owed.empty()) {
      forget_owing(key);
      continue;
    }
    for (OwedReply& o : f->owed.all()) {
      if (o.deadline > now) continue;
      if (o.given_up()) {
        counters.add(Counter::inject_gave_up);
        f->inspector->request_reset();
        reset_flow(*f, key, box);
        break;
      }
      send_owed(*f, o, now, box);
    }
  }
}

void Pipeline::Impl::send_owed(InspectedFlow& f, OwedReply& o, Timestamp now, Outbox& box) {
  box.inject(answer_segment(f, o));
  counters.add(o.tries == 0 ? Counter::inject_segments : Counter::inject_retransmits);
  o.sent(now);
}

}  // namespace sg::core
