#pragma once
// A copy of what the pipeline knows about one tracked flow, for diagnostics
// (Pipeline::summarize_flows; smtpguardctl flows). Plain values: nothing points into the pipeline,
// so a summary may be handed to another thread.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "net/packet.hpp"
#include "util/time.hpp"

namespace sg::flow {
struct FlowKey;
}

namespace sg::core {

struct FlowSummary {
  // From the SYN. A flow picked up mid-stream has no known roles: `client` and `server` are then
  // the two ends in the flow key's canonical order, and roles_known is false.
  net::IpAddress client, server;
  uint16_t client_port = 0, server_port = 0;
  bool roles_known = true;
  std::string_view state;  // "syn-sent", "established", "closing", "closed", "passthrough"
  std::string profile;     // the profile the flow got at its handshake; empty: none yet
  // Payload bytes inspected per direction (stream offsets: original bytes, before any edit).
  uint64_t bytes_c2s = 0, bytes_s2c = 0;
  // The connection's sequence numbers are mapped (a length-changing edit happened), and the
  // difference rewritten - original at each direction's frontier.
  bool mapped = false;
  int64_t delta_c2s = 0, delta_s2c = 0;
  size_t held_packets = 0;  // packets kept queued in the kernel, both directions
  size_t held_bytes = 0;
  size_t owed_replies = 0;  // gateway answers not yet acknowledged by the client
  bool done = false;        // kernel bypass requested (inspection finished)
  bool reset = false;       // the gateway reset or dropped the connection
  Timestamp expires{};      // when the flow table forgets it unless a packet comes
};

struct InspectedFlow;
// The summary of flow `f`, keyed `key`, which the table forgets at `expires`.
FlowSummary summarize(const flow::FlowKey& key, const InspectedFlow& f, Timestamp expires);

}  // namespace sg::core
