#pragma once
// One NFQUEUE, bound over a raw netlink socket (libmnl + libnetfilter_queue's nlmsg helpers):
// receive queued packets, send verdicts. This is the only place that speaks nfnetlink_queue.
//
// Nothing here throws after open(): receive and verdict report errors as values and count them,
// because a worker thread must keep verdicting whatever happens.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/expected.hpp"

struct mnl_socket;
struct nlmsghdr;
#include "util/counter_set.hpp"

namespace sg::nfq {

// Every NFQUEUE-side counter of a worker, declared once (the pipeline has its own list).
#define SG_QUEUE_COUNTERS(X)                                                                  \
  X(nfq_datagrams, "netlink datagrams received")                                              \
  X(nfq_packets_gso, "GSO super-packets received")                                            \
  X(nfq_packets_truncated, "packets longer than the copy range (the truncated exception)")    \
  X(nfq_enobufs, "socket receive buffer overruns reported by the kernel")                     \
  X(nfq_receive_errors, "receive errors other than overruns")                                 \
  X(nfq_netlink_errors, "error replies from the kernel (e.g. a verdict for an unknown id)")   \
  X(nfq_malformed, "messages without a packet header or payload")                             \
  X(nfq_startup_accepts, "packets accepted uninspected while the queue was being configured") \
  X(nfq_verdicts, "individual verdicts sent")                                                 \
  X(nfq_verdicts_payload, "individual verdicts that carried a rewritten payload")             \
  X(nfq_verdicts_marked, "verdicts that set a packet mark")                                   \
  X(nfq_batch_verdicts, "batch verdicts sent")                                                \
  X(nfq_send_errors, "verdicts that could not be sent")

SG_DECLARE_COUNTERS(QueueCounter, kQueueCounterInfo, SG_QUEUE_COUNTERS)

// Written by one worker thread, read by others.
using QueueCounters = CounterSet<QueueCounter>;

struct QueueOptions {
  uint16_t queue_num = 0;
  uint32_t max_len = 4096;    // NFQA_CFG_QUEUE_MAXLEN (kernel default is 1024)
  bool fail_open = false;     // NFQA_CFG_F_FAIL_OPEN: accept instead of drop when the queue is full
  size_t receive_buffer = 0;  // socket receive buffer in bytes; 0 = receive_buffer_for(max_len)
  // NFQA_CFG_F_CONNTRACK: each packet comes with its connection's conntrack attributes, of which
  // the mark is kept (QueuedPacket::ct_mark). A kernel that cannot (no ctnetlink) binds without.
  bool conntrack = false;
};

// The socket buffer for a queue of `max_len` packets. See queue.cpp for the reasoning.
size_t receive_buffer_for(uint32_t max_len);

// One packet as the kernel queued it. `packet` points into the queue's receive buffer and stays
// valid until the next receive(); the pipeline may rewrite it in place.
struct QueuedPacket {
  uint32_t id = 0;
  std::span<uint8_t> packet;         // the IP packet (network header first)
  bool checksum_not_ready = false;   // NFQA_SKB_CSUMNOTREADY: TCP checksum is only the pseudo sum
  bool gso = false;                  // NFQA_SKB_GSO: a super-packet, segmented after the verdict
  bool checksum_unverified = false;  // NFQA_SKB_CSUM_NOTVERIFIED: nobody checked the checksum
  uint32_t in_interface = 0;         // NFQA_IFINDEX_INDEV (0: none, locally generated)
  bool truncated = false;    // longer than the copy range: must never be returned as a payload
  uint32_t mark = 0;         // skb->mark when the packet was queued
  uint32_t ct_mark = 0;      // the connection's ct mark (0 without NFQA_CFG_F_CONNTRACK)
  uint16_t hw_protocol = 0;  // ETH_P_IP / ETH_P_IPV6, host order
};

enum class ReceiveStatus : uint8_t {
  kReceived,    // one datagram was read and its packets were handed to the callback
  kWouldBlock,  // nothing to read
  kOverrun,     // ENOBUFS: the kernel dropped messages for this socket (counted)
  kError,       // any other receive error (counted); the errno is in last_errno()
};

// The queue's line of /proc/net/netfilter/nfnetlink_queue.
struct KernelQueueStats {
  uint16_t queue_num = 0;
  uint32_t peer_portid = 0;  // netlink port id of the listener
  uint32_t queue_total = 0;  // packets waiting for a verdict right now
  uint32_t copy_mode = 0;
  uint32_t copy_range = 0;
  uint64_t queue_dropped = 0;  // dropped because the queue was full (without FAIL_OPEN)
  uint64_t user_dropped = 0;   // dropped because the socket buffer was full (netlink unicast)
  uint32_t id_sequence = 0;    // last packet id handed out
};

// The CTA_MARK inside the payload of an NFQA_CT attribute (ctnetlink attributes of the packet's
// connection); 0 when absent, as the kernel leaves out a zero mark. Bounds-checked: a malformed
// nest yields 0.
uint32_t conntrack_mark(std::span<const uint8_t> nfqa_ct_payload);

// Parses one line of /proc/net/netfilter/nfnetlink_queue; nullopt when it is not one.
std::optional<KernelQueueStats> parse_kernel_stats_line(std::string_view line);
// Reads the line of `queue_num` (in the caller's network namespace); nullopt if unbound.
std::optional<KernelQueueStats> read_kernel_stats(uint16_t queue_num);

class NfQueue {
 public:
  // Opens a socket and binds the queue (startup: the error is a sentence for the operator).
  static Expected<std::unique_ptr<NfQueue>, std::string> open(const QueueOptions& options);
  ~NfQueue();
  NfQueue(const NfQueue&) = delete;
  NfQueue& operator=(const NfQueue&) = delete;

  int fd() const;
  uint16_t queue_num() const { return queue_num_; }
  // The receive buffer size the kernel granted (it reports twice what was asked for).
  size_t receive_buffer() const { return receive_buffer_; }
  // Packets carry their connection's ct mark (asked for with QueueOptions::conntrack, and the
  // kernel could).
  bool has_conntrack() const { return conntrack_; }

  // Reads one datagram without blocking and calls `on_packet(QueuedPacket&)` for each packet in
  // it. EINTR is retried; every other condition is a status.
  template <class OnPacket>
  ReceiveStatus receive(OnPacket&& on_packet) {
    packets_.clear();
    ReceiveStatus status = receive_datagram();
    for (QueuedPacket& p : packets_) on_packet(p);
    return status;
  }

  // An individual verdict (NF_ACCEPT or NF_DROP). A non-empty `payload` replaces the packet and
  // must be the complete IP packet with valid checksums; `mark` sets skb->mark. Returns 0 or an
  // errno value.
  [[nodiscard]] int verdict(uint32_t id, uint32_t verdict, std::span<const uint8_t> payload = {},
                            std::optional<uint32_t> mark = std::nullopt);
  // NFQNL_MSG_VERDICT_BATCH: the kernel applies `verdict` to every queued packet with an id up
  // to `max_id`, including any the daemon still means to hold. Returns 0 or an errno value.
  [[nodiscard]] int batch_verdict(uint32_t max_id, uint32_t verdict);

  // Unbinds the queue and closes the socket. Packets still queued are dropped by the kernel, so
  // the caller verdicts everything first. Idempotent; the destructor calls it.
  void close();

  int last_errno() const { return last_errno_; }
  const QueueCounters& counters() const { return counters_; }

 private:
  NfQueue(mnl_socket* socket, uint16_t queue_num);
  ReceiveStatus receive_datagram();
  void parse_packet(const nlmsghdr* nlh);
  int send(const nlmsghdr* nlh);
  int configure(const QueueOptions& options, bool conntrack);

  mnl_socket* socket_ = nullptr;
  uint16_t queue_num_ = 0;
  uint32_t port_id_ = 0;
  size_t receive_buffer_ = 0;
  bool conntrack_ = false;  // the kernel attaches conntrack attributes to each packet
  int last_errno_ = 0;
  std::vector<uint8_t> receive_buf_;
  std::vector<uint8_t> send_buf_;
  std::vector<QueuedPacket> packets_;
  QueueCounters counters_;
};

}  // namespace sg::nfq
