// null_queue — the benchmark's "null queue" configuration: an NFQUEUE listener that accepts
// every packet unchanged, one verdict per packet, no batching, no inspection. It measures what
// the kernel <-> userspace round trip alone costs, so smtpguardd's figures can be read against
// it.
//
//   sg_null_queue [--queues N|A-B] [--no-gso] [--max-len N]
//
// One thread per queue, each with its own netlink socket. GSO (NFQA_CFG_F_GSO) is on unless
// --no-gso: without it the kernel segments every super-packet before queueing, and each
// segment costs a round trip (DESIGN.md §3). Prints "null_queue: ready" on stderr once every
// queue is bound, and its packet counts when SIGINT/SIGTERM stops it. Bench code: errors
// simply end the program.
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include <libnetfilter_queue/libnetfilter_queue.h>
}

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop.store(true);
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "null_queue: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

struct Settings {
  uint16_t first = 0, last = 0;
  bool gso = true;
  uint32_t max_len = 4096;  // the daemon's default --queue-maxlen
};

// The largest packet the kernel copies (it caps the copy range at 65531 bytes), plus headers.
constexpr size_t kReceiveBuffer = 0x10000 + 8192;

class QueueListener {
 public:
  QueueListener(uint16_t queue_num, const Settings& s) : queue_num_(queue_num) {
    nl_ = mnl_socket_open(NETLINK_NETFILTER);
    if (nl_ == nullptr) die("mnl_socket_open");
    if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) die("mnl_socket_bind");
    portid_ = mnl_socket_get_portid(nl_);
    const int fd = mnl_socket_get_fd(nl_);
    int one = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
    // Room for a full queue of small packets; FORCE needs CAP_NET_ADMIN, which we have.
    int rcvbuf = 16 * 1024 * 1024;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0) {
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    recv_buf_.resize(kReceiveBuffer);

    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
    nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queue_num_);
    nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
    send(nlh, "bind");

    nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, queue_num_);
    nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
    nfq_nlmsg_cfg_put_qmaxlen(nlh, s.max_len);
    // Always send the flags attribute with the GSO bit in the mask, so --no-gso really clears it.
    mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(s.gso ? NFQA_CFG_F_GSO : 0));
    mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO));
    send(nlh, "config");
  }
  ~QueueListener() { mnl_socket_close(nl_); }
  QueueListener(const QueueListener&) = delete;
  QueueListener& operator=(const QueueListener&) = delete;

  void run() {
    const int fd = mnl_socket_get_fd(nl_);
    while (!g_stop.load(std::memory_order_relaxed)) {
      pollfd pfd{fd, POLLIN, 0};
      int r = poll(&pfd, 1, 200);  // the stop flag is seen within 200 ms
      if (r <= 0) continue;
      ssize_t n = recv(fd, recv_buf_.data(), recv_buf_.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR || errno == ENOBUFS) continue;
        die("recv");
      }
      ++datagrams_;
      mnl_cb_run(recv_buf_.data(), static_cast<size_t>(n), 0, portid_, &QueueListener::on_message,
                 this);
    }
  }

  uint16_t queue_num() const { return queue_num_; }
  uint64_t packets() const { return packets_; }
  uint64_t gso_packets() const { return gso_packets_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t datagrams() const { return datagrams_; }

 private:
  // Sends a config message and reads its ack: an error (e.g. the queue is taken) ends here.
  void send(nlmsghdr* nlh, const char* what) {
    nlh->nlmsg_flags |= NLM_F_ACK;
    nlh->nlmsg_seq = ++seq_;
    if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) die(what);
    std::vector<char> ack(MNL_SOCKET_BUFFER_SIZE);
    ssize_t n = mnl_socket_recvfrom(nl_, ack.data(), ack.size());
    if (n < 0) die(what);
    if (mnl_cb_run(ack.data(), static_cast<size_t>(n), seq_, portid_, nullptr, nullptr) < 0) {
      die(what);
    }
  }

  static int on_message(const nlmsghdr* nlh, void* data) {
    auto* self = static_cast<QueueListener*>(data);
    nlattr* attr[NFQA_MAX + 1] = {};
    if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == nullptr) return MNL_CB_OK;
    auto* ph = static_cast<nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
    const uint32_t id = ntohl(ph->packet_id);
    ++self->packets_;
    if (attr[NFQA_PAYLOAD] != nullptr) self->bytes_ += mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
    if (attr[NFQA_SKB_INFO] != nullptr &&
        (ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO])) & NFQA_SKB_GSO) != 0) {
      ++self->gso_packets_;
    }
    // One verdict per packet, no payload: the kernel keeps the packet as it was.
    char buf[128];
    nlmsghdr* v = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, self->queue_num_);
    nfq_nlmsg_verdict_put(v, static_cast<int>(id), NF_ACCEPT);
    if (mnl_socket_sendto(self->nl_, v, v->nlmsg_len) < 0) die("verdict");
    return MNL_CB_OK;
  }

  uint16_t queue_num_;
  mnl_socket* nl_ = nullptr;
  unsigned portid_ = 0;
  unsigned seq_ = 0;
  std::vector<char> recv_buf_;
  uint64_t packets_ = 0, gso_packets_ = 0, bytes_ = 0, datagrams_ = 0;
};

Settings parse(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "null_queue: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--queues") {
      std::string v = value();
      auto dash = v.find('-');
      s.first = static_cast<uint16_t>(std::stoul(v.substr(0, dash)));
      s.last = dash == std::string::npos ? s.first
                                         : static_cast<uint16_t>(std::stoul(v.substr(dash + 1)));
      if (s.last < s.first || s.last - s.first > 15) {
        std::fprintf(stderr, "null_queue: bad --queues %s\n", v.c_str());
        std::exit(2);
      }
    } else if (a == "--no-gso") {
      s.gso = false;
    } else if (a == "--max-len") {
      s.max_len = static_cast<uint32_t>(std::stoul(value()));
    } else {
      std::fprintf(stderr, "usage: sg_null_queue [--queues N|A-B] [--no-gso] [--max-len N]\n");
      std::exit(a == "--help" ? 0 : 2);
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const Settings s = parse(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::vector<std::unique_ptr<QueueListener>> queues;
  for (unsigned q = s.first; q <= s.last; ++q) {
    queues.push_back(std::make_unique<QueueListener>(static_cast<uint16_t>(q), s));
  }
  std::vector<std::thread> threads;
  for (auto& q : queues) threads.emplace_back([&q] { q->run(); });
  std::fprintf(stderr, "null_queue: ready (queues %u-%u, gso %s)\n", s.first, s.last,
               s.gso ? "on" : "off");
  for (auto& t : threads) t.join();
  for (auto& q : queues) {
    std::fprintf(stderr,
                 "null_queue: queue %u packets=%llu gso_packets=%llu bytes=%llu datagrams=%llu\n",
                 q->queue_num(), static_cast<unsigned long long>(q->packets()),
                 static_cast<unsigned long long>(q->gso_packets()),
                 static_cast<unsigned long long>(q->bytes()),
                 static_cast<unsigned long long>(q->datagrams()));
  }
  return 0;
}
