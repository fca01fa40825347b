#include "nfq/queue.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

namespace sg::nfq {
namespace {

// The kernel copies at most 0xffff - NLA_HDRLEN bytes of a packet (NFQNL_MAX_COPY_RANGE); asking
// for 0xffff gets exactly that. A GSO super-packet can be up to 64 KiB, so the rare longer one
// arrives truncated and is flagged (see QueuedPacket::truncated).
constexpr uint32_t kCopyRange = 0xffff;

// One datagram holds one packet message: the payload (up to the copy range) plus nfnetlink
// attributes (header, mark, interfaces, hardware address, timestamp, skb info: well under 1 KiB).
// 16 KiB of slack keeps a future attribute from truncating the datagram.
constexpr size_t kReceiveBytes = kCopyRange + 16 * 1024;
// A verdict carries at most one payload of the same size plus a few small attributes.
constexpr size_t kSendBytes = kCopyRange + 4 * 1024;

// Per queued packet the socket must hold one message. A typical SMTP-path packet (a command, a
// reply line, an ACK, an MTU-sized DATA segment) costs about 2 KiB of skb truesize; GSO
// super-packets reference the original pages (skb_zerocopy) instead of copying them. So queue
// length x 2 KiB holds a full queue of ordinary packets, and the floor keeps small queues from
// overrunning on a burst of large ones. The cap bounds kernel memory per queue.
constexpr size_t kBytesPerQueuedPacket = 2048;
constexpr size_t kMinReceiveBuffer = 2u << 20;
constexpr size_t kMaxReceiveBuffer = 256u << 20;

// How long open() waits for the kernel to acknowledge the configuration.
constexpr int kConfigTimeoutMs = 2000;

uint16_t message_type(const nlmsghdr* nlh) {
  return nlh->nlmsg_type & 0xff;
}

std::string errno_text(int err) {
  return std::string(std::strerror(err));
}

}  // namespace

size_t receive_buffer_for(uint32_t max_len) {
  size_t want = static_cast<size_t>(max_len) * kBytesPerQueuedPacket;
  return std::clamp(want, kMinReceiveBuffer, kMaxReceiveBuffer);
}

uint32_t conntrack_mark(std::span<const uint8_t> payload) {
  // libmnl walks the attributes and never reads past a short or lying length.
  uint32_t mark = 0;
  mnl_attr_parse_payload(
      payload.data(), payload.size(),
      [](const nlattr* a, void* data) {
        if (mnl_attr_get_type(a) != CTA_MARK) return MNL_CB_OK;
        if (mnl_attr_validate(a, MNL_TYPE_U32) < 0) return MNL_CB_ERROR;
        *static_cast<uint32_t*>(data) = ntohl(mnl_attr_get_u32(a));
        return MNL_CB_STOP;
      },
      &mark);
  return mark;
}

std::optional<KernelQueueStats> parse_kernel_stats_line(std::string_view line) {
  // "queue portid waiting copy_mode copy_range queue_dropped user_dropped id_sequence 1",
  // all decimal, separated by spaces (see nfnetlink_queue.c seq_show).
  std::array<uint64_t, 8> v{};
  size_t n = 0;
  const char* p = line.data();
  const char* end = line.data() + line.size();
  while (n < v.size()) {
    while (p < end && *p == ' ') ++p;
    auto [next, ec] = std::from_chars(p, end, v[n]);
    if (ec != std::errc{} || (next < end && *next != ' ')) return std::nullopt;
    p = next;
    ++n;
  }
  if (v[0] > 0xffff) return std::nullopt;
  KernelQueueStats s;
  s.queue_num = static_cast<uint16_t>(v[0]);
  s.peer_portid = static_cast<uint32_t>(v[1]);
  s.queue_total = static_cast<uint32_t>(v[2]);
  s.copy_mode = static_cast<uint32_t>(v[3]);
  s.copy_range = static_cast<uint32_t>(v[4]);
  s.queue_dropped = v[5];
  s.user_dropped = v[6];
  s.id_sequence = static_cast<uint32_t>(v[7]);
  return s;
}

std::optional<KernelQueueStats> read_kernel_stats(uint16_t queue_num) {
  // /proc/net follows the reading thread's network namespace, which is the daemon's.
  std::ifstream in("/proc/net/netfilter/nfnetlink_queue");
  std::string line;
  for (int i = 0; i < 65536 && std::getline(in, line); ++i) {
    auto s = parse_kernel_stats_line(line);
    if (s && s->queue_num == queue_num) return s;
  }
  return std::nullopt;
}

NfQueue::NfQueue(mnl_socket* socket, uint16_t queue_num)
    : socket_(socket),
      queue_num_(queue_num),
      port_id_(mnl_socket_get_portid(socket)),
      receive_buf_(kReceiveBytes),
      send_buf_(kSendBytes) {
  packets_.reserve(4);
}

NfQueue::~NfQueue() {
  close();
}

int NfQueue::fd() const {
  return socket_ ? mnl_socket_get_fd(socket_) : -1;
}

Expected<std::unique_ptr<NfQueue>, std::string> NfQueue::open(const QueueOptions& options) {
  std::string where = "queue " + std::to_string(options.queue_num) + ": ";
  mnl_socket* socket = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (!socket) return unexpected(where + "netlink socket: " + errno_text(errno));
  if (mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(socket);
    return unexpected(where + "netlink bind: " + errno_text(err));
  }
  std::unique_ptr<NfQueue> queue(new NfQueue(socket, options.queue_num));
  int fd = queue->fd();

  // With NETLINK_NO_ENOBUFS an overrun no longer poisons the next recv() with ENOBUFS; the lost
  // packets are still counted by the kernel as "user dropped" (read_kernel_stats).
  int one = 1;
  if (setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one)) < 0)
    return unexpected(where + "NETLINK_NO_ENOBUFS: " + errno_text(errno));

  // SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; SO_RCVBUF is capped by it.
  size_t want =
      options.receive_buffer ? options.receive_buffer : receive_buffer_for(options.max_len);
  int size = static_cast<int>(std::min<size_t>(want, 0x7fffffff / 2));
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  int granted = 0;
  socklen_t len = sizeof(granted);
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &len) == 0)
    queue->receive_buffer_ = static_cast<size_t>(granted);

  // NFQA_CFG_F_CONNTRACK needs the kernel's ctnetlink glue: a kernel that just loaded it for
  // this request answers EAGAIN (ask again), one without it EOPNOTSUPP (bind without; the
  // caller sees has_conntrack() false and says so).
  int err = options.conntrack ? queue->configure(options, true) : EOPNOTSUPP;
  if (err == EAGAIN) err = queue->configure(options, true);
  if (err == 0) {
    queue->conntrack_ = true;
  } else if (err == EOPNOTSUPP || err == EAGAIN || !options.conntrack) {
    err = queue->configure(options, false);
  }
  if (err != 0) {
    queue->socket_ = nullptr;  // never bound: no unbind on close
    mnl_socket_close(socket);
    if (err == EPERM) {
      // The kernel answers EPERM both to a caller without CAP_NET_ADMIN and to a bind of a queue
      // that another socket owns; /proc tells the two apart.
      if (auto s = read_kernel_stats(options.queue_num))
        return unexpected(where + "already bound by another process (netlink port " +
                          std::to_string(s->peer_portid) + ")");
      return unexpected(where + "permission denied: binding a queue needs root (CAP_NET_ADMIN)");
    }
    return unexpected(where + "configuration refused by the kernel: " + errno_text(err));
  }

  // The packet path never blocks: the worker polls the descriptor.
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return unexpected(where + "O_NONBLOCK: " + errno_text(errno));
  return queue;
}

// Binds the queue and sets every parameter in one message, so that the kernel validates the
// flags before it creates the instance (a refused flag leaves nothing bound), and waits for the
// acknowledgement. Returns 0 or the kernel's errno.
int NfQueue::configure(const QueueOptions& options, bool conntrack) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queue_num_);
  nlh->nlmsg_flags |= NLM_F_ACK;
  const uint32_t seq = 1;
  nlh->nlmsg_seq = seq;
  nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
  nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, static_cast<int>(kCopyRange));
  nfq_nlmsg_cfg_put_qmaxlen(nlh, options.max_len);
  // One FLAGS attribute with one MASK: the mask names every flag we own, so FAIL_OPEN is cleared
  // explicitly when not asked for. GSO is always on: without it the kernel segments (and
  // checksums) every super-packet before queueing, which costs an order of magnitude in
  // throughput (DESIGN.md section 3).
  uint32_t flags = NFQA_CFG_F_GSO | (options.fail_open ? NFQA_CFG_F_FAIL_OPEN : 0) |
                   (conntrack ? NFQA_CFG_F_CONNTRACK : 0);
  uint32_t mask = NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_CONNTRACK;
  mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
  mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(mask));

  int fd = this->fd();
  timeval tv{kConfigTimeoutMs / 1000, (kConfigTimeoutMs % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (int err = send(nlh); err != 0) return err;

  // Packets can reach the socket between the bind and the acknowledgement if rules already
  // divert traffic: they get an immediate accept (counted) so none is left without a verdict.
  for (int round = 0; round < 64; ++round) {
    ssize_t n = mnl_socket_recvfrom(socket_, receive_buf_.data(), receive_buf_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN ? ETIMEDOUT : errno;
    }
    int remaining = static_cast<int>(n);
    for (auto* m = reinterpret_cast<const nlmsghdr*>(receive_buf_.data());
         mnl_nlmsg_ok(m, remaining); m = mnl_nlmsg_next(m, &remaining)) {
      if (m->nlmsg_type == NLMSG_ERROR && m->nlmsg_seq == seq) {
        const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
        tv = timeval{0, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return -e->error;
      }
      if (message_type(m) == NFQNL_MSG_PACKET) {
        packets_.clear();
        parse_packet(m);
        for (const QueuedPacket& p : packets_) {
          counters_.add(QueueCounter::nfq_startup_accepts);
          (void)verdict(p.id, NF_ACCEPT);
        }
        packets_.clear();
      }
    }
  }
  return ETIMEDOUT;
}

ReceiveStatus NfQueue::receive_datagram() {
  ssize_t n = -1;
  for (int attempt = 0; attempt < 8; ++attempt) {
    n = recv(fd(), receive_buf_.data(), receive_buf_.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (n >= 0 || errno != EINTR) break;
  }
  if (n < 0) {
    last_errno_ = errno;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
      return ReceiveStatus::kWouldBlock;
    if (errno == ENOBUFS) {
      counters_.add(QueueCounter::nfq_enobufs);
      return ReceiveStatus::kOverrun;
    }
    counters_.add(QueueCounter::nfq_receive_errors);
    return ReceiveStatus::kError;
  }
  if (static_cast<size_t>(n) > receive_buf_.size()) {
    // MSG_TRUNC reports the real length: a datagram larger than the buffer lost its tail. Its
    // packet cannot be verdicted safely from here; the kernel keeps it queued until unbind.
    last_errno_ = EMSGSIZE;
    counters_.add(QueueCounter::nfq_receive_errors);
    return ReceiveStatus::kError;
  }
  counters_.add(QueueCounter::nfq_datagrams);
  int remaining = static_cast<int>(n);
  for (auto* nlh = reinterpret_cast<const nlmsghdr*>(receive_buf_.data());
       mnl_nlmsg_ok(nlh, remaining); nlh = mnl_nlmsg_next(nlh, &remaining)) {
    if (nlh->nlmsg_type == NLMSG_ERROR) {
      // Verdicts are sent without NLM_F_ACK, so only failures come back.
      const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      if (e->error != 0) {
        last_errno_ = -e->error;
        counters_.add(QueueCounter::nfq_netlink_errors);
      }
      continue;
    }
    if (message_type(nlh) == NFQNL_MSG_PACKET) parse_packet(nlh);
  }
  return ReceiveStatus::kReceived;
}

void NfQueue::parse_packet(const nlmsghdr* nlh) {
  nlattr* attr[NFQA_MAX + 1] = {};
  if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR]) {
    counters_.add(QueueCounter::nfq_malformed);
    return;
  }
  const auto* hdr =
      static_cast<const nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
  QueuedPacket p;
  p.id = ntohl(hdr->packet_id);
  p.hw_protocol = ntohs(hdr->hw_protocol);
  if (attr[NFQA_PAYLOAD]) {
    auto* data = static_cast<uint8_t*>(mnl_attr_get_payload(attr[NFQA_PAYLOAD]));
    p.packet = std::span<uint8_t>(data, mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]));
  }
  if (attr[NFQA_MARK]) p.mark = ntohl(mnl_attr_get_u32(attr[NFQA_MARK]));
  if (attr[NFQA_CT]) {
    p.ct_mark = conntrack_mark({static_cast<const uint8_t*>(mnl_attr_get_payload(attr[NFQA_CT])),
                                mnl_attr_get_payload_len(attr[NFQA_CT])});
  }
  if (attr[NFQA_SKB_INFO]) {
    uint32_t info = ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO]));
    p.checksum_not_ready = (info & NFQA_SKB_CSUMNOTREADY) != 0;
    p.gso = (info & NFQA_SKB_GSO) != 0;
    p.checksum_unverified = (info & NFQA_SKB_CSUM_NOTVERIFIED) != 0;
  }
  if (attr[NFQA_IFINDEX_INDEV]) p.in_interface = ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_INDEV]));
  // NFQA_CAP_LEN is present only when the packet was longer than what was copied.
  if (attr[NFQA_CAP_LEN] && ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) > p.packet.size())
    p.truncated = true;
  if (p.gso) counters_.add(QueueCounter::nfq_packets_gso);
  if (p.truncated) counters_.add(QueueCounter::nfq_packets_truncated);
  if (p.packet.empty()) {
    // Still a queued packet: the caller must verdict it, so it is delivered, flagged by size.
    counters_.add(QueueCounter::nfq_malformed);
  }
  packets_.push_back(p);
}

int NfQueue::send(const nlmsghdr* nlh) {
  if (!socket_) return EBADF;
  for (int attempt = 0; attempt < 8; ++attempt) {
    if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) >= 0) return 0;
    if (errno != EINTR) break;
  }
  last_errno_ = errno;
  counters_.add(QueueCounter::nfq_send_errors);
  return last_errno_;
}

int NfQueue::verdict(uint32_t id, uint32_t verdict, std::span<const uint8_t> payload,
                     std::optional<uint32_t> mark) {
  // An attribute length is 16 bits including its 4-byte header.
  if (payload.size() > 0xffff - 4) {
    last_errno_ = EMSGSIZE;
    counters_.add(QueueCounter::nfq_send_errors);
    return EMSGSIZE;
  }
  nlmsghdr* nlh =
      nfq_nlmsg_put(reinterpret_cast<char*>(send_buf_.data()), NFQNL_MSG_VERDICT, queue_num_);
  nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), static_cast<int>(verdict));
  if (mark) nfq_nlmsg_verdict_put_mark(nlh, *mark);
  if (!payload.empty())
    nfq_nlmsg_verdict_put_pkt(nlh, payload.data(), static_cast<uint32_t>(payload.size()));
  int err = send(nlh);
  if (err == 0) {
    counters_.add(QueueCounter::nfq_verdicts);
    if (!payload.empty()) counters_.add(QueueCounter::nfq_verdicts_payload);
    if (mark) counters_.add(QueueCounter::nfq_verdicts_marked);
  }
  return err;
}

int NfQueue::batch_verdict(uint32_t max_id, uint32_t verdict) {
  nlmsghdr* nlh =
      nfq_nlmsg_put(reinterpret_cast<char*>(send_buf_.data()), NFQNL_MSG_VERDICT_BATCH, queue_num_);
  nfq_nlmsg_verdict_put(nlh, static_cast<int>(max_id), static_cast<int>(verdict));
  int err = send(nlh);
  if (err == 0) counters_.add(QueueCounter::nfq_batch_verdicts);
  return err;
}

void NfQueue::close() {
  if (!socket_) return;
  // Closing the socket alone would also release the queue (the kernel unbinds on netlink
  // release), but an explicit unbind makes the intent visible and is harmless if it fails.
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queue_num_);
  nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_UNBIND);
  (void)mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len);
  mnl_socket_close(socket_);
  socket_ = nullptr;
}

}  // namespace sg::nfq
