#pragma once
// Telling the kernel's connection tracking to stop judging the TCP windows of a connection whose
// sequence numbers the daemon maps, and marking it mapped (ctnetlink, IPCTNL_MSG_CT_NEW on an
// existing entry).
//
// Why: conntrack runs before the queue (prerouting), so it sees what the endpoints send, not what
// the daemon makes of it. Once an edit changes a length, each endpoint acknowledges the stream it
// received, which is not the one conntrack saw the other endpoint send: tcp_in_window finds acks
// beyond the data and marks the packets INVALID, and the common `ct state invalid drop` kills the
// connection. IP_CT_TCP_FLAG_BE_LIBERAL on both directions makes tcp_in_window accept what it
// would have refused (nf_tcp_log_invalid returns ACCEPT for a liberal sender); state tracking,
// timeouts and NAT stay as they are. It is what the kernel sets itself on connections it picks
// up mid-stream.
//
// The mapped bit (--mapped-mark) in the ct mark outlives the daemon: the rules queue such a
// connection's packets without bypass, so a dead daemon drops them instead of passing them
// unmapped, and a new daemon that meets one resets the connection instead of picking it up
// mid-stream (core::PacketMeta). It is set in the same request as the liberal flags.
//
// Nothing here throws or blocks after create(): the kernel handles a ctnetlink request inside
// the send, so its answer is already queued on the socket when send returns and is read with
// MSG_DONTWAIT. Every outcome is counted.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/pipeline.hpp"
#include "util/expected.hpp"

struct mnl_socket;
#include "util/counter_set.hpp"

namespace sg::nfq {

// Every connection-tracking counter of a worker, declared once.
#define SG_CONNTRACK_COUNTERS(X)                                                                \
  X(conntrack_liberal_set, "mapped connections whose conntrack entry was made liberal")         \
  X(conntrack_mapped_marked, "mapped connections whose ct mark got the mapped bit")             \
  X(conntrack_not_found, "mapped connections without a conntrack entry (untracked, NAT, zone)") \
  X(conntrack_errors, "requests refused or not answered (see the log for the errno)")

SG_DECLARE_COUNTERS(ConntrackCounter, kConntrackCounterInfo, SG_CONNTRACK_COUNTERS)

// Written by the worker thread that owns the tuner, read by others.
using ConntrackCounters = CounterSet<ConntrackCounter>;

// Which tuple names the connection in a request. The kernel's lookup matches a tuple against
// both directions of every entry, so client->server finds the entry whoever opened it, as long
// as the addresses are the ones conntrack recorded. With DNAT the original tuple holds the
// pre-NAT destination the daemon never sees, but the reply tuple is server->client as seen here.
enum class TupleKind : uint8_t {
  kOriginal,  // CTA_TUPLE_ORIG = client -> server
  kReply,     // CTA_TUPLE_REPLY = server -> client
};

// One ctnetlink request, built in place. The largest (IPv6) is 120 bytes.
struct ConntrackRequest {
  static constexpr size_t kCapacity = 256;
  alignas(4) std::array<uint8_t, kCapacity> bytes{};
  size_t size = 0;
  std::span<const uint8_t> view() const { return {bytes.data(), size}; }
};

// What an update changes in the entry of a mapped connection.
struct ConntrackUpdate {
  bool liberal = true;     // IP_CT_TCP_FLAG_BE_LIBERAL in both directions
  uint32_t mark_bits = 0;  // OR'ed into the ct mark (CTA_MARK + CTA_MARK_MASK); 0: mark untouched
  bool empty() const { return !liberal && mark_bits == 0; }
};

// The IPCTNL_MSG_CT_NEW update of the TCP connection `flow`, named by `kind`: sets
// IP_CT_TCP_FLAG_BE_LIBERAL (flags and mask) in both directions and/or ORs `mark_bits` into the
// ct mark. NLM_F_REQUEST | NLM_F_ACK and no NLM_F_CREATE: the kernel changes an existing entry
// or answers ENOENT, never creates one. Pure: no socket involved.
ConntrackRequest build_update_request(const core::MappedFlow& flow, TupleKind kind, uint32_t seq,
                                      ConntrackUpdate what);
// build_update_request with the liberal flags only.
ConntrackRequest build_liberal_request(const core::MappedFlow& flow, TupleKind kind, uint32_t seq);

// What the kernel answered to a request.
enum class ConntrackResult : uint8_t {
  kDone,      // changed
  kNotFound,  // ENOENT: no entry for this tuple
  kError,     // any other errno, or no answer at all
};

class ConntrackTuner {
 public:
  // Opens a non-blocking NETLINK_NETFILTER socket. Needs no conntrack module: a kernel that
  // tracks nothing answers ENOENT later (counted as not found). Startup only: the error is a
  // sentence naming the call that failed.
  static Expected<std::unique_ptr<ConntrackTuner>, std::string> create(ConntrackUpdate what = {});
  ~ConntrackTuner();
  ConntrackTuner(const ConntrackTuner&) = delete;
  ConntrackTuner& operator=(const ConntrackTuner&) = delete;

  // Applies the update to the connection's entry: by its original tuple, and by its reply tuple
  // when the first finds nothing. Counts liberal_set and/or mapped_marked, or not_found, or
  // errors (the errno of an error is last_errno()). Never blocks.
  ConntrackResult update(const core::MappedFlow& flow);

  // The errno of the last failed request (0: none yet); ETIMEDOUT when the kernel's answer was
  // not on the socket.
  int last_errno() const { return last_errno_; }
  const ConntrackCounters& counters() const { return counters_; }

 private:
  ConntrackTuner(mnl_socket* socket, ConntrackUpdate what);
  // Sends one request and reads its answer; returns 0 or an errno value.
  int request(const core::MappedFlow& flow, TupleKind kind);
  // Reads what is on the socket without blocking; returns the answer to `seq`, or ETIMEDOUT
  // when it is not there (answers to earlier requests are skipped).
  int read_answer(uint32_t seq);

  mnl_socket* socket_ = nullptr;
  ConntrackUpdate what_;
  uint32_t port_id_ = 0;
  uint32_t seq_ = 0;
  int last_errno_ = 0;
  std::array<uint8_t, 8192> receive_buf_{};
  ConntrackCounters counters_;
};

}  // namespace sg::nfq
