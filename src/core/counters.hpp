#pragma once
// Every counter of a worker, declared once. Workers own theirs; readers sum them.
#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>
#include "policy/exceptions.hpp"
#include "util/counter_set.hpp"

namespace sg::core {

#define SG_COUNTERS(X)                                                                     \
  X(packets, "packets received from the queue")                                            \
  X(bytes, "bytes received from the queue")                                                \
  X(packets_invalid, "packets that failed validation (dropped)")                           \
  X(packets_not_tracked,                                                                   \
    "packets no flow could inspect: data before the handshake completed (dropped), "       \
    "packets of unknown flows (dropped; forwarded if a RST or if midstream is pass)")      \
  X(verdict_accept, "packets accepted unchanged")                                          \
  X(verdict_modified, "packets accepted with rewritten payload")                           \
  X(verdict_drop, "packets dropped")                                                       \
  X(holds, "packets held for a later verdict")                                             \
  X(hold_releases, "held packets released")                                                \
  X(hold_timeouts, "partial lines neutralised because their hold timed out")               \
  X(hold_overflows, "partial lines neutralised because the hold limit was reached")        \
  X(retransmissions_dropped, "retransmissions of held bytes dropped (original is held)")   \
  X(flows_created, "flows tracked")                                                        \
  X(flows_midstream, "flows picked up without a handshake")                                \
  X(flows_evicted, "flows evicted because the table was full")                             \
  X(flows_expired, "flows expired after their idle timeout")                               \
  X(flows_closed, "flows ended by FIN or RST")                                             \
  X(segments_out_of_order, "segments beyond the inspection frontier")                      \
  X(segments_overlap_conflict, "overlapping data that differs from what was inspected")    \
  X(tcp_urgent_cleared, "segments forwarded without their URG flag and urgent pointer")    \
  X(budget_drops, "new data segments dropped because the worker's byte budget was full")   \
  X(budget_releases, "flows whose retained bytes were let go to stay within the budget")   \
  X(budget_released_bytes, "retained bytes let go to stay within the byte budget")         \
  X(retransmissions_unverifiable, "retransmissions of bytes no longer retained (dropped)") \
  X(smtp_commands, "SMTP commands parsed")                                                 \
  X(smtp_replies, "SMTP reply lines parsed")                                               \
  X(smtp_overlong_lines, "lines longer than the configured cap")                           \
  X(smtp_desync, "dialogues that lost sync (inspection stopped for the flow)")             \
  X(starttls, "flows that started TLS (inspection stops)")                                 \
  X(edit_banner_masked, "banner lines masked")                                             \
  X(edit_keyword_masked, "EHLO keywords masked")                                           \
  X(edit_command_masked, "client commands masked")                                         \
  X(edit_keyword_stripped, "EHLO keyword lines stripped")                                  \
  X(edit_strip_kept, "EHLO lines kept because the reply's end was already released")       \
  X(edit_command_answered, "client commands removed and answered by the gateway")          \
  X(edit_command_reset, "client commands that reset their connection")                     \
  X(edit_command_dropped, "client commands that dropped their connection")                 \
  X(commands_logged, "client commands forwarded and logged by a log rule")                 \
  X(checks_fired, "parameter checks that fired (any action)")                              \
  X(flows_dropped, "flows dropped silently by drop-connection")                            \
  X(flows_reset_at_exit, "mapped flows reset because the daemon stopped")                  \
  X(flows_reset_unmappable, "packets of unknown flows marked mapped: dropped, ends reset") \
  X(edit_bytes, "payload bytes rewritten")                                                 \
  X(edit_bytes_removed, "payload bytes removed")                                           \
  X(edit_bytes_inserted, "payload bytes inserted")                                         \
  X(segments_resized, "packets whose payload length changed")                              \
  X(segments_trimmed, "retransmissions trimmed to what the receiver had not acknowledged") \
  X(inject_segments, "segments the gateway sent on the server's behalf")                   \
  X(inject_retransmits, "retransmissions of the gateway's own segments")                   \
  X(inject_gave_up, "flows reset because the client never acknowledged the gateway")       \
  X(resets_sent, "RST segments the gateway sent")                                          \
  X(flows_reset, "flows reset by policy or failure")                                       \
  X(flows_mapped, "flows whose sequence numbers are mapped (a length changed)")            \
  X(tcp_bad_checksum, "segments with a wrong TCP checksum (dropped: the receiver would)")  \
  X(tcp_wrong_interface, "segments of a flow arriving on another interface (dropped)")     \
  X(tcp_ack_unsent, "segments acknowledging data never forwarded (dropped)")               \
  X(tcp_rst_ignored, "RSTs not at the next sequence number (forwarded, state kept)")       \
  X(tcp_fin_ignored, "FINs not at their place in the stream (forwarded, state kept)")      \
  X(tcp_syn_refused, "SYNs with a new ISN on a live inspected flow (dropped)")             \
  X(tcp_synack_replaced, "SYN-ACKs with a new ISN before the handshake completed")         \
  /* one per exception, in SG_EXCEPTIONS order (policy/exceptions.hpp) */                  \
  X(exception_midstream, "exception: no handshake seen")                                   \
  X(exception_memory_budget, "exception: byte budget full")                                \
  X(exception_pending_buffer, "exception: per-connection pending bytes over the cap")      \
  X(exception_hold_limit, "exception: a segment beyond a hole could not be held")          \
  X(exception_truncated, "exception: truncated packet")                                    \
  X(exception_pending_overflow, "exception: too many pipelined commands")                  \
  X(exception_unclassifiable, "exception: a line servers may read differently")            \
  X(exception_unplaceable, "exception: a sequence number that cannot be placed")

SG_DECLARE_COUNTERS(Counter, kCounterInfo, SG_COUNTERS)

// Written by one worker thread, read by others.
using Counters = CounterSet<Counter>;

// The counter of exception `e`.
inline constexpr Counter exception_counter(policy::Exception e) {
  return static_cast<Counter>(static_cast<size_t>(Counter::exception_midstream) +
                              static_cast<size_t>(e));
}
static_assert(static_cast<size_t>(Counter::exception_unplaceable) + 1 ==
                      static_cast<size_t>(Counter::kCount) &&
                  static_cast<size_t>(Counter::exception_midstream) + policy::kExceptionCount ==
                      static_cast<size_t>(Counter::kCount),
              "one exception counter per exception, in order, at the end");

}  // namespace sg::core
