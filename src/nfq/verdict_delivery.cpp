#include "nfq/verdict_delivery.hpp"

#include <linux/netfilter.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

namespace sg::nfq {
namespace {

using core::VerdictKind;

// At most one log line per second per worker for repeated runtime errors.
constexpr Duration kErrorLogInterval = seconds(1);

}  // namespace

VerdictDelivery::VerdictDelivery(NfQueue& queue, RawInjector& injector, ConntrackTuner* conntrack,
                                 std::function<void(const core::Decision&)> on_decision)
    : queue_(queue),
      injector_(injector),
      conntrack_(conntrack),
      on_decision_(std::move(on_decision)) {}

void VerdictDelivery::deliver(core::Output& output, const QueuedPacket& packet,
                              const core::PacketVerdict& verdict, bool holding) {
  deliver(output, &packet, &verdict, holding);
}

void VerdictDelivery::deliver(core::Output& output) {
  deliver(output, nullptr, nullptr, false);
}

void VerdictDelivery::deliver(core::Output& output, const QueuedPacket* packet,
                              const core::PacketVerdict* verdict, bool holding) {
  // Before any verdict: see tune_conntrack.
  tune_conntrack(output);
  // Released packets precede the call's own packet on the wire.
  const bool released_itself = verdict_releases(output, packet);
  if (packet) {
    verdict_packet(*packet, *verdict, holding, released_itself);
  } else {
    flush();
  }
  // What the gateway originates (an answer in place of a removed command, a reset) follows the
  // packet that caused it on the wire.
  send_injections(output);
  deliver_decisions(output);
}

void VerdictDelivery::verdict_packet(const QueuedPacket& p, const core::PacketVerdict& v,
                                     bool holding, bool released_itself) {
  switch (v.kind) {
    case VerdictKind::kAccept:
      // A batch verdict also accepts every held packet with a smaller id: batch only while the
      // pipeline holds nothing, and never with a mark (a batch cannot carry one per packet).
      if (v.mark == 0 && !holding) {
        batch_pending_ = true;
        batch_max_id_ = p.id;
      } else {
        flush();
        send_verdict(p.id, NF_ACCEPT, {}, v.mark, p.mark);
      }
      break;
    case VerdictKind::kAcceptModified:
      flush();
      send_verdict(p.id, NF_ACCEPT, v.bytes, v.mark, p.mark);
      break;
    case VerdictKind::kDrop:
      // A drop may overtake the pending batch: order only matters for packets that leave.
      send_verdict(p.id, NF_DROP, {}, 0, 0);
      break;
    case VerdictKind::kHold:
      // Everything before the held packet leaves now; later accepts go one by one until the
      // pipeline releases it.
      flush();
      // A packet held and released by the same call (its own RST closed the flow) has its
      // verdict already: nothing may wait for it.
      if (p.mark != 0 && !released_itself) held_marks_[p.id] = p.mark;
      break;
  }
}

void VerdictDelivery::drop(uint32_t id) {
  send_verdict(id, NF_DROP, {}, 0, 0);
}

void VerdictDelivery::deliver_decisions(core::Output& output) {
  if (output.decisions.empty()) return;
  if (on_decision_) {
    for (const core::Decision& d : output.decisions) {
      // The sink is not to throw; if it does, the packet path goes on without that line.
      try {
        on_decision_(d);
      } catch (...) {
      }
    }
  }
  output.decisions.clear();
}

void VerdictDelivery::tune_conntrack(core::Output& output) {
  // Called right after the pipeline and before the verdicts and injections of the same call.
  // The kernel applies the change inside the netlink send, so the gateway's own segments
  // (conntrack checks them on output) and every later packet of the connection, the endpoints'
  // answers to the rewrite included, meet a liberal entry. (The packet that caused the mapping
  // has passed conntrack already, before the queue.)
  if (output.mapped_flows.empty()) return;
  if (conntrack_) {
    for (const core::MappedFlow& f : output.mapped_flows) {
      if (conntrack_->update(f) == ConntrackResult::kError)
        note_conntrack_error(conntrack_->last_errno());
    }
  }
  output.mapped_flows.clear();
}

bool VerdictDelivery::verdict_releases(core::Output& output, const QueuedPacket* current) {
  if (output.released.empty()) return false;
  bool released_current = false;
  flush();
  for (const core::Release& r : output.released) {
    uint32_t original_mark = 0;
    if (current && r.packet_id == current->id) {
      original_mark = current->mark;
      released_current = true;
    } else if (auto it = held_marks_.find(r.packet_id); it != held_marks_.end()) {
      original_mark = it->second;
      held_marks_.erase(it);
    }
    switch (r.kind) {
      case VerdictKind::kAcceptModified:
        send_verdict(r.packet_id, NF_ACCEPT, r.bytes, r.mark, original_mark);
        break;
      case VerdictKind::kDrop:
        send_verdict(r.packet_id, NF_DROP, {}, 0, 0);
        break;
      case VerdictKind::kAccept:
      case VerdictKind::kHold:  // not a release kind; passing it is the only safe reading
        send_verdict(r.packet_id, NF_ACCEPT, {}, r.mark, original_mark);
        break;
    }
  }
  output.released.clear();
  return released_current;
}

void VerdictDelivery::send_injections(core::Output& output) {
  if (output.injected.empty()) return;
  // An accept still waiting in the batch is a packet of this call or an earlier one: it goes
  // first. The kernel reinjects a verdicted packet inside the netlink send, so once the flush
  // returns, it is ahead of anything sent below.
  flush();
  for (const core::Injection& i : output.injected) {
    if (!injector_.send(i.bytes)) note_inject_error(injector_.last_errno());
  }
  output.injected.clear();
}

void VerdictDelivery::flush() {
  if (!batch_pending_) return;
  batch_pending_ = false;
  if (int err = queue_.batch_verdict(batch_max_id_, NF_ACCEPT); err != 0) note_netlink_error(err);
}

void VerdictDelivery::send_verdict(uint32_t id, uint32_t verdict, std::span<const uint8_t> payload,
                                   uint32_t mark_bits, uint32_t original_mark) {
  // The daemon owns only its mark bits: the rest of skb->mark (policy routing, other tools)
  // is kept as it was when the packet was queued.
  std::optional<uint32_t> mark;
  if (mark_bits != 0) mark = original_mark | mark_bits;
  int err = queue_.verdict(id, verdict, payload, mark);
  // A transient shortage of kernel memory is worth one retry: an unsent verdict leaves the
  // packet queued until shutdown.
  if (err == ENOBUFS || err == ENOMEM || err == EAGAIN)
    err = queue_.verdict(id, verdict, payload, mark);
  if (err != 0) note_netlink_error(err);
}

void VerdictDelivery::note_netlink_error(int err) {
  Timestamp now = Clock::now();
  if (now - last_error_log_ < kErrorLogInterval) return;
  last_error_log_ = now;
  std::fprintf(stderr, "smtpguardd: queue %u: netlink: %s (see nfq_* counters)\n",
               queue_.queue_num(), std::strerror(err));
}

void VerdictDelivery::note_inject_error(int err) {
  // Logged separately from netlink errors, so that a burst of one never hides the other.
  Timestamp now = Clock::now();
  if (now - last_inject_log_ < kErrorLogInterval) return;
  last_inject_log_ = now;
  std::fprintf(stderr, "smtpguardd: queue %u: injecting a packet: %s (see inject_* counters)\n",
               queue_.queue_num(), std::strerror(err));
}

void VerdictDelivery::note_conntrack_error(int err) {
  Timestamp now = Clock::now();
  if (now - last_conntrack_log_ < kErrorLogInterval) return;
  last_conntrack_log_ = now;
  std::fprintf(stderr,
               "smtpguardd: queue %u: updating a mapped connection's conntrack entry: %s (see "
               "conntrack_* counters; a `ct state invalid drop` rule may drop its packets, and "
               "without the mapped bit a restarted daemon cannot tell it was mapped)\n",
               queue_.queue_num(), std::strerror(err));
}

}  // namespace sg::nfq
