#pragma once
// The pipeline's private state and stages (core/pipeline.cpp reads top-down; the stages are
// defined in pipeline_connection.cpp and pipeline_stream.cpp). Not for other modules.
#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/byte_budget.hpp"
#include "core/inspected_flow.hpp"
#include "core/outbox.hpp"
#include "core/pipeline.hpp"
#include "flow/flow_key.hpp"
#include "flow/flow_table.hpp"
#include "net/packet.hpp"

namespace sg::core {

using smtp::Dir;

inline constexpr Dir kDirs[] = {Dir::kClientToServer, Dir::kServerToClient};
inline size_t index(Dir d) {
  return static_cast<size_t>(d);
}

// Idle timeouts per state. SMTP servers wait 5 minutes for a command (RFC 5321 4.5.3.2.7);
// an established flow outlives that.
inline Duration idle_timeout(tcp::ConnectionState s) {
  switch (s) {
    case tcp::ConnectionState::kSynSent:
      return seconds(30);
    case tcp::ConnectionState::kEstablished:
      return seconds(900);
    case tcp::ConnectionState::kClosing:
      return seconds(60);
    case tcp::ConnectionState::kClosed:
      return seconds(10);
    case tcp::ConnectionState::kPassthrough:
      return seconds(900);
  }
  return seconds(60);
}

// A connection whose inspection is over (the done mark) sends the gateway only its SYN, FIN
// and RST packets (the rest bypass the queue): kept long enough to see it close rather than be
// forgotten and met as a mid-stream pickup when it does.
inline Duration idle_timeout(const InspectedFlow& f) {
  if (f.done_marked && f.conn.state() != tcp::ConnectionState::kClosed) return seconds(7200);
  return idle_timeout(f.conn.state());
}

struct Pipeline::Impl {
  explicit Impl(PipelineConfig c)
      : config(std::move(c)), budget(config.memory_budget), table(config.max_flows) {}

  PipelineConfig config;
  Counters counters;
  ByteBudget budget;  // before the table: flows give their blocks back to its pool when destroyed
  flow::FlowTable<InspectedFlow> table;
  std::vector<flow::FlowKey> holding;  // flows that hold packets (few: only partial lines)
  std::vector<flow::FlowKey> owing;    // flows with gateway segments not yet acknowledged
  std::vector<uint8_t> current;        // the current packet, when rewriting changed its length
  Outbox::Storage outbox;              // bytes of the current call's releases and injections
  Timestamp next_expiry{};

  // The start of every call: the previous call's bytes go.
  Outbox begin(Output& out) { return Outbox(out, outbox); }

  // pipeline.cpp: the conveyor.
  PacketVerdict process(uint32_t id, std::span<uint8_t> packet, Timestamp now, PacketMeta meta,
                        Outbox& box);
  std::optional<net::PacketView> parse(std::span<const uint8_t> packet, const PacketMeta& meta);
  // The packet's flow; a SYN starts one. Null when the packet has no flow to follow:
  // `refused` is then its verdict.
  InspectedFlow* look_up(const flow::KeyedPacket& kp, const net::PacketView& v,
                         const PacketMeta& meta, Timestamp now, Outbox& box,
                         PacketVerdict& refused);
  InspectedFlow* insert_flow(const flow::FlowKey& key, Timestamp now, Duration idle, Outbox& box);
  PacketVerdict conclude(InspectedFlow& f, const flow::FlowKey& key, Dir dir,
                         const net::PacketView& v, PacketVerdict verdict, Timestamp now,
                         Outbox& box);
  // A flow leaves the table: what it holds is decided, its budget and registrations go.
  void forget(InspectedFlow& f, const flow::FlowKey& key, Outbox& box);

  // pipeline_connection.cpp: TCP state, resets and refusals.
  // The packet's TCP meaning: interface, handshake, the sender's numbers. False when its
  // receiver would not take it (it is dropped and changes nothing).
  bool track_tcp(InspectedFlow& f, const flow::FlowKey& key, Dir dir,
                 std::span<const uint8_t> packet, const net::PacketView& v, uint32_t in_interface);
  // RST and FIN change the flow's state only where the receiver takes them (tcp/connection).
  void track_close(InspectedFlow& f, const flow::FlowKey& key, Dir dir, const net::PacketView& v,
                   const PacketVerdict& verdict, Outbox& box);
  void note_ack(InspectedFlow& f, const flow::FlowKey& key, Dir from, const net::PacketView& v);
  void reset_flow(InspectedFlow& f, const flow::FlowKey& key, Outbox& box);
  PacketVerdict answer_after_reset(InspectedFlow& f, const net::PacketView& v, Outbox& box);
  PacketVerdict refuse_unmappable(const net::PacketView& v, Outbox& box);
  // A packet the kernel copied only in part: the truncated exception's policy.
  PacketVerdict refuse_truncated(std::span<const uint8_t> packet, Outbox& box);
  // A packet of a connection whose handshake was not seen: the midstream exception's policy.
  PacketVerdict midstream(const flow::KeyedPacket& kp, const net::PacketView& v, Timestamp now,
                          Outbox& box);
  // Hands the flow's decisions to the caller with the connection's addresses.
  void flush_decisions(InspectedFlow& f, Outbox& box);
  void decide(const InspectedFlow& f, policy::Event e, std::string_view action, Dir d, Outbox& box,
              bool ends_connection = false);
  // Exception `e` about the packet at hand (counted, logged, its action taken by the
  // inspector; a reset follows at the end of process). True when the packet goes on (pass).
  bool raise(InspectedFlow& f, policy::Exception e, Dir d, std::string detail = {});

  // pipeline_stream.cpp: payload, held packets, the byte budget, the gateway's own segments.
  PacketVerdict handle_data(InspectedFlow& f, const flow::FlowKey& key, Dir dir, uint32_t id,
                            std::span<uint8_t> packet, const net::PacketView& v, Timestamp now,
                            Outbox& box);
  bool can_hold(const tcp::HoldQueue& q, size_t bytes) const {
    return q.fits(bytes, config.max_held_packets_per_flow, config.max_held_bytes_per_flow);
  }
  void hold(InspectedFlow& f, const flow::FlowKey& key, Dir d, tcp::HeldPacket h);
  void feed_held(InspectedFlow& f, Dir d, Outbox& box);
  void drop_unfed(InspectedFlow& f, Dir d, Timestamp deadline, Outbox& box);
  void release_ready(InspectedFlow& f, const flow::FlowKey& key, Outbox& box);
  void force_all(InspectedFlow& f, const flow::FlowKey& key, Outbox& box);
  // The timer: unfed packets past their deadline are dropped, a partial line held past its
  // deadline is decided, and what is decided leaves.
  void decide_overdue_holds(Timestamp now, Outbox& box);
  // The packet as the receiver must get it (render, map, checksums), as a verdict.
  PacketVerdict emit(InspectedFlow& f, Dir d, std::span<uint8_t> packet, const net::PacketView& v,
                     std::vector<uint8_t>& storage, Outbox& box);
  // Bytes the session has not consumed yet count against the budget: updated after each feed.
  void account_pending(InspectedFlow& f) {
    budget.account_pending(f.pending_counted,
                           f.inspector->pending_memory(Dir::kClientToServer) +
                               f.inspector->pending_memory(Dir::kServerToClient));
  }
  // Whether `more` bytes fit in the budget; the flow retaining the most (more than `f`) may
  // have to let go of its retained bytes.
  bool within_budget(InspectedFlow& f, size_t more, Timestamp now, Outbox& box);
  void take_gateway_replies(InspectedFlow& f, const flow::FlowKey& key, Timestamp now, Outbox& box);
  // The timer: owed answers due are sent again; a client that never acknowledges one is reset.
  void retransmit_owed(Timestamp now, Outbox& box);
  void send_owed(InspectedFlow& f, OwedReply& o, Timestamp now, Outbox& box);

  void forget_owing(const flow::FlowKey& key) {
    owing.erase(std::remove(owing.begin(), owing.end(), key), owing.end());
  }
  void forget_holding(const flow::FlowKey& key) {
    holding.erase(std::remove(holding.begin(), holding.end(), key), holding.end());
  }
  PacketVerdict accept(uint32_t mark = 0) {
    counters.add(Counter::verdict_accept);
    return {VerdictKind::kAccept, mark};
  }
  PacketVerdict drop() {
    counters.add(Counter::verdict_drop);
    return {VerdictKind::kDrop, 0};
  }
};

}  // namespace sg::core
