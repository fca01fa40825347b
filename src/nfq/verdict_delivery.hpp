#pragma once
// Delivering what one pipeline call produced (core::Output) to the kernel and the wire. The
// order is the same for every call, whether a queued packet, a timer or a drain made it:
//
//   conntrack tuning    mapped connections become liberal before any of their packets leave
//   released verdicts   held packets the call released, in order (they precede the packet)
//   own verdict         the packet of the call, if any; else the accept batch is flushed
//   injections          what the gateway originates follows the packet that caused it
//   decisions           to the log, last: nothing on the wire waits for it
//
// Accepts of untouched packets are gathered into one batch verdict (NFQNL_MSG_VERDICT_BATCH,
// which accepts every queued id up to its maximum): only while the pipeline holds nothing and
// never with a mark; any other verdict, a hold and an injection flush it first. The marks that
// held packets had when queued are kept here, so that a mark set at release keeps them.
//
// Nothing here throws: send errors are counted by the queue and the injector and logged at most
// once a second per kind.
#include <cstdint>
#include <functional>
#include <span>
#include <unordered_map>

#include "core/decision.hpp"
#include "core/pipeline.hpp"
#include "nfq/conntrack.hpp"
#include "nfq/injector.hpp"
#include "nfq/queue.hpp"
#include "util/time.hpp"

namespace sg::nfq {

class VerdictDelivery {
 public:
  // `conntrack` may be null (no conntrack tuning and no mapped mark). `on_decision` gets each
  // policy decision after the call's verdicts; it must not block for long and must not throw
  // (if it does, the packet path goes on without it). Null: decisions are dropped.
  VerdictDelivery(NfQueue& queue, RawInjector& injector, ConntrackTuner* conntrack,
                  std::function<void(const core::Decision&)> on_decision);

  // The output of a pipeline call for `packet`, whose verdict is `verdict`; `holding`: the
  // pipeline holds packets after the call. Empties `output`.
  void deliver(core::Output& output, const QueuedPacket& packet, const core::PacketVerdict& verdict,
               bool holding);
  // The output of a call without a packet of its own (timers, drain). Empties `output`.
  void deliver(core::Output& output);
  // Drops a packet the pipeline never saw (nothing in it to inspect).
  void drop(uint32_t id);
  // Sends the pending accept batch, if any (the end of a burst: nothing accepted waits for the
  // next wake-up).
  void flush();
  // Forgets the marks of held packets (shutdown, once everything is decided).
  void forget_held() { held_marks_.clear(); }

  // A netlink error of the queue (sending or receiving), logged at most once a second.
  void note_netlink_error(int err);

 private:
  void deliver(core::Output& output, const QueuedPacket* packet, const core::PacketVerdict* verdict,
               bool holding);
  // Loosens conntrack for the connections the call started mapping.
  void tune_conntrack(core::Output& output);
  // Verdicts the call's releases. `current` may be among them (held and released by the same
  // call); returns whether it was.
  bool verdict_releases(core::Output& output, const QueuedPacket* current);
  void verdict_packet(const QueuedPacket& packet, const core::PacketVerdict& verdict, bool holding,
                      bool released_itself);
  void send_injections(core::Output& output);
  void deliver_decisions(core::Output& output);

  void send_verdict(uint32_t id, uint32_t verdict, std::span<const uint8_t> payload,
                    uint32_t mark_bits, uint32_t original_mark);
  void note_inject_error(int err);
  void note_conntrack_error(int err);

  NfQueue& queue_;
  RawInjector& injector_;
  ConntrackTuner* conntrack_;
  std::function<void(const core::Decision&)> on_decision_;
  // Marks of held packets that had one when queued: a mark set at release must keep them.
  std::unordered_map<uint32_t, uint32_t> held_marks_;
  bool batch_pending_ = false;
  uint32_t batch_max_id_ = 0;
  Timestamp last_error_log_{};
  Timestamp last_inject_log_{};
  Timestamp last_conntrack_log_{};
};

}  // namespace sg::nfq
