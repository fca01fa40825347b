#pragma once
// The per-worker data path, top-down: parse -> flow -> TCP -> SMTP -> policy -> edits -> verdict.
// Pure: the caller hands in packet bytes and the time, and gets verdicts back.
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/counters.hpp"
#include "core/decision.hpp"
#include "core/flow_summary.hpp"
#include "net/packet.hpp"
#include "policy/exceptions.hpp"
#include "policy/policy_set.hpp"
#include "policy/profile.hpp"
#include "util/time.hpp"

namespace sg::core {

enum class VerdictKind : uint8_t {
  kAccept,          // pass unchanged (may be batched by the caller)
  kAcceptModified,  // pass with the rewritten bytes (checksums already complete)
  kDrop,            // discard
  kHold,            // keep queued in the kernel: the verdict comes later, through a Release
};

struct PacketVerdict {
  VerdictKind kind = VerdictKind::kAccept;
  uint32_t mark = 0;  // non-zero: set this packet mark (kernel bypass of finished flows)
  // For kAcceptModified: the whole rewritten IP packet, checksums complete. Either the caller's
  // buffer (same length) or one the pipeline owns (length changed); valid until the next call.
  std::span<const uint8_t> bytes;
};

// A packet that was held earlier and is now decided. `bytes` stays valid until the next call
// into the pipeline.
struct Release {
  uint32_t packet_id = 0;
  VerdictKind kind = VerdictKind::kAccept;  // kAccept, kAcceptModified or kDrop
  std::span<const uint8_t> bytes;           // the whole IP packet (for kAcceptModified)
  uint32_t mark = 0;
};

// A packet the gateway originates: an answer in the server's place, a retransmission of one, or
// a reset. The whole IP packet with complete checksums; the caller sends it through a raw socket
// after the verdicts of the same call. `bytes` stays valid until the next call.
struct Injection {
  std::span<const uint8_t> bytes;
};

// A connection whose sequence numbers the gateway maps from now on (its first length-changing
// edit). The kernel's connection tracking judges sequence numbers against the stream it saw
// before the rewrite; the caller tells it to stop judging this connection's windows, or the
// endpoints' acks for the rewritten stream look out of window (ct state invalid).
struct MappedFlow {
  net::IpAddress client, server;
  uint16_t client_port = 0, server_port = 0;
};

// What one call into the pipeline produced besides the packet's own verdict.
struct Output {
  std::vector<Release> released;         // verdict these, in order, before the packet's own
  std::vector<Injection> injected;       // then send these
  std::vector<MappedFlow> mapped_flows;  // and update connection tracking for these
  std::vector<Decision> decisions;       // and log these
  void clear() {
    released.clear();
    injected.clear();
    mapped_flows.clear();
    decisions.clear();
  }
};

// What the kernel shell knows about a packet besides its bytes.
struct PacketMeta {
  // The connection's conntrack entry carries the mapped bit: some daemon mapped its sequence
  // numbers. A flow the pipeline does not know with this flag cannot be picked up mid-stream
  // (its deltas are lost): its packet is dropped and the connection reset.
  bool conntrack_mapped = false;
  // NFQA_SKB_CSUM_NOTVERIFIED: nobody checked the TCP checksum (no hardware offload, a raw
  // socket's packet): the pipeline does, since the receiver would drop a wrong one.
  bool checksum_unverified = false;
  // NFQA_IFINDEX_INDEV: the interface the packet came in on (0: none, locally generated).
  uint32_t in_interface = 0;
  // The kernel copied only part of the packet (NFQA_CAP_LEN): `packet` holds its headers and
  // part of its payload, and must never be returned as a payload.
  bool truncated = false;
};

struct PipelineConfig {
  // Which profile each new connection gets. A connection keeps the profile it started with
  // (set_policies changes it for new connections only).
  std::shared_ptr<const policy::PolicySet> policies;
  size_t max_flows = 65536;
  Duration hold_timeout = milliseconds(2000);  // a held partial line is neutralised after this
  size_t max_held_packets_per_flow = 64;
  size_t max_held_bytes_per_flow = 64 * 1024;
  // What to do when a connection cannot be followed (no handshake seen, a limit, a line that
  // cannot be classified...): policy/exceptions.hpp. Mid-stream pickup included.
  policy::ExceptionPolicy exceptions;
  uint32_t done_mark = 0;  // mark set on packets of flows that need no more inspection
  // Bytes this pipeline may keep for all its flows together: retained bytes (whole blocks,
  // with the blocks pooled for reuse), held packets, and bytes the sessions have not consumed
  // yet (client input waiting for a reply; each connection's is capped too). 0: no limit. Over it,
  // the flows retaining the most let go of their retained bytes, or the new data segment is dropped
  // (the sender retransmits it): see Limits under load in docs/deploy.md.
  size_t memory_budget = 0;
  // Set while somebody watches the decisions (eventlog/watch_hub.hpp): the decisions that
  // change a line then carry it before and after. Null: never.
  const std::atomic<bool>* watched = nullptr;
};

class Pipeline {
 public:
  explicit Pipeline(PipelineConfig config);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Processes one packet. `packet` is the whole IP packet and may be rewritten in place (same
  // length, or shorter when the rewrite removes bytes: see PacketVerdict); `checksum_not_ready` is
  // NFQUEUE's CSUMNOTREADY flag. Packets released from hold by this packet are appended to
  // `out.released`, in the order they must be verdicted, and must be verdicted before this
  // packet's own verdict; packets the gateway originates are appended to `out.injected`.
  PacketVerdict process(uint32_t packet_id, std::span<uint8_t> packet, bool checksum_not_ready,
                        Timestamp now, Output& out, PacketMeta meta = {});

  // Releases held packets whose deadline passed, retransmits the gateway's own unacknowledged
  // segments, and expires idle flows.
  void on_timer(Timestamp now, Output& out);
  // When on_timer next has work to do (Timestamp::max() when nothing is held).
  Timestamp next_deadline() const;
  // Shutdown: releases every held packet (nothing may stay unverdicted) and resets every
  // connection whose sequence numbers are mapped (RSTs both ways in `out.injected`).
  void drain(Timestamp now, Output& out);

  // New connections get `policies` from now on; existing ones keep their profile (reload).
  void set_policies(std::shared_ptr<const policy::PolicySet> policies);

  bool has_held_packets() const;
  // Bytes counted against PipelineConfig::memory_budget right now.
  size_t budget_used() const;
  const Counters& counters() const;
  // The flows the table holds right now.
  size_t flow_count() const;

  // Appends a summary of at most `max` tracked flows to `out`, least recently active first
  // (diagnostics: smtpguardctl flows). Returns how many flows the table holds.
  size_t summarize_flows(std::vector<FlowSummary>& out, size_t max) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sg::core
