#include "nfq/conntrack.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

namespace sg::nfq {
namespace {

// Datagrams read per request while looking for its answer. Each request reads its own answer at
// once, so at most a stray earlier one can be in the way.
constexpr int kMaxReadsPerAnswer = 8;

std::string errno_text(int err) {
  return std::string(std::strerror(err));
}

// CTA_TUPLE_ORIG or CTA_TUPLE_REPLY { CTA_TUPLE_IP { src, dst }, CTA_TUPLE_PROTO { TCP, ports } }.
// Addresses and ports in network byte order, as the kernel reads them (nla_get_in_addr,
// nla_get_be16); an IPv4 address is the last four bytes of its v4-mapped form.
void put_tuple(nlmsghdr* nlh, uint16_t type, const net::IpAddress& src, uint16_t src_port,
               const net::IpAddress& dst, uint16_t dst_port) {
  nlattr* tuple = mnl_attr_nest_start(nlh, type);
  nlattr* ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
  if (src.is_v4()) {
    mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, src.bytes.data() + 12);
    mnl_attr_put(nlh, CTA_IP_V4_DST, 4, dst.bytes.data() + 12);
  } else {
    mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, src.bytes.data());
    mnl_attr_put(nlh, CTA_IP_V6_DST, 16, dst.bytes.data());
  }
  mnl_attr_nest_end(nlh, ip);
  nlattr* proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
  mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(src_port));
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dst_port));
  mnl_attr_nest_end(nlh, proto);
  mnl_attr_nest_end(nlh, tuple);
}

}  // namespace

ConntrackRequest build_liberal_request(const core::MappedFlow& flow, TupleKind kind, uint32_t seq) {
  return build_update_request(flow, kind, seq, ConntrackUpdate{true, 0});
}

ConntrackRequest build_update_request(const core::MappedFlow& flow, TupleKind kind, uint32_t seq,
                                      ConntrackUpdate what) {
  ConntrackRequest r;
  nlmsghdr* nlh = mnl_nlmsg_put_header(r.bytes.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
  // No NLM_F_CREATE: an entry that does not exist is ENOENT, never a new one. No NLM_F_EXCL:
  // with it an existing entry would be EEXIST instead of changed.
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = seq;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  // The kernel parses the tuple's addresses by this family.
  nfg->nfgen_family = flow.client.is_v4() ? AF_INET : AF_INET6;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;

  if (kind == TupleKind::kOriginal) {
    put_tuple(nlh, CTA_TUPLE_ORIG, flow.client, flow.client_port, flow.server, flow.server_port);
  } else {
    put_tuple(nlh, CTA_TUPLE_REPLY, flow.server, flow.server_port, flow.client, flow.client_port);
  }

  // nlattr_to_tcp (nf_conntrack_proto_tcp.c) applies seen[dir].flags = (flags & ~mask) |
  // (flags_attr & mask) per direction, so the mask keeps every other flag (window scale, SACK
  // permitted, ...) as conntrack learnt it. CTA_PROTOINFO_TCP_STATE is optional there and left
  // out: the state machine stays conntrack's. The liberal flag is tested on the sender's side,
  // hence both directions.
  if (what.liberal) {
    const nf_ct_tcp_flags liberal{IP_CT_TCP_FLAG_BE_LIBERAL, IP_CT_TCP_FLAG_BE_LIBERAL};
    nlattr* info = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
    nlattr* tcp = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);
    mnl_attr_put(nlh, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, sizeof(liberal), &liberal);
    mnl_attr_put(nlh, CTA_PROTOINFO_TCP_FLAGS_REPLY, sizeof(liberal), &liberal);
    mnl_attr_nest_end(nlh, tcp);
    mnl_attr_nest_end(nlh, info);
  }
  if (what.mark_bits != 0) {
    // ctnetlink_change_mark: new = (old & ~MASK) ^ MARK, so MARK = MASK = the bits sets them and
    // keeps every other bit of the ct mark (the done mark, other tools' bits). Big-endian.
    mnl_attr_put_u32(nlh, CTA_MARK, htonl(what.mark_bits));
    mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(what.mark_bits));
  }
  r.size = nlh->nlmsg_len;
  return r;
}

ConntrackTuner::ConntrackTuner(mnl_socket* socket, ConntrackUpdate what)
    : socket_(socket), what_(what), port_id_(mnl_socket_get_portid(socket)) {}

ConntrackTuner::~ConntrackTuner() {
  if (socket_) mnl_socket_close(socket_);
}

Expected<std::unique_ptr<ConntrackTuner>, std::string> ConntrackTuner::create(
    ConntrackUpdate what) {
  // Non-blocking from the start: the worker never waits for the kernel's answer (it is queued
  // before send returns, see the header).
  mnl_socket* socket = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (!socket) return unexpected("conntrack: netlink socket: " + errno_text(errno));
  if (mnl_socket_bind(socket, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(socket);
    return unexpected("conntrack: netlink bind: " + errno_text(err));
  }
  // Error answers without a copy of the request (Linux >= 4.3; older kernels echo it, which
  // only makes the answers longer).
  int one = 1;
  setsockopt(mnl_socket_get_fd(socket), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  return std::unique_ptr<ConntrackTuner>(new ConntrackTuner(socket, what));
}

ConntrackResult ConntrackTuner::update(const core::MappedFlow& flow) {
  if (what_.empty()) return ConntrackResult::kDone;
  int err = request(flow, TupleKind::kOriginal);
  if (err == ENOENT) err = request(flow, TupleKind::kReply);
  if (err == 0) {
    if (what_.liberal) counters_.add(ConntrackCounter::conntrack_liberal_set);
    if (what_.mark_bits != 0) counters_.add(ConntrackCounter::conntrack_mapped_marked);
    return ConntrackResult::kDone;
  }
  if (err == ENOENT) {
    // Nothing tracks this connection (no conntrack user in this namespace, a NOTRACK rule, a
    // zone, or NAT on both addresses): nothing to loosen either.
    counters_.add(ConntrackCounter::conntrack_not_found);
    return ConntrackResult::kNotFound;
  }
  last_errno_ = err;
  counters_.add(ConntrackCounter::conntrack_errors);
  return ConntrackResult::kError;
}

int ConntrackTuner::request(const core::MappedFlow& flow, TupleKind kind) {
  const uint32_t seq = ++seq_;
  const ConntrackRequest r = build_update_request(flow, kind, seq, what_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (mnl_socket_sendto(socket_, r.bytes.data(), r.size) >= 0) return read_answer(seq);
    if (errno != EINTR) return errno;
  }
  return EINTR;
}

int ConntrackTuner::read_answer(uint32_t seq) {
  for (int i = 0; i < kMaxReadsPerAnswer; ++i) {
    ssize_t n =
        recv(mnl_socket_get_fd(socket_), receive_buf_.data(), receive_buf_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      // EAGAIN: the answer is not there, which the synchronous kernel path rules out unless the
      // socket's buffer overran (then ENOBUFS came first). Either way it is not known to be done.
      return errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
    }
    auto* nlh = reinterpret_cast<const nlmsghdr*>(receive_buf_.data());
    int len = static_cast<int>(n);
    for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq != seq ||
          (nlh->nlmsg_pid != 0 && nlh->nlmsg_pid != port_id_))
        continue;
      if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) return EBADMSG;
      const auto* answer = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
      // 0 is the acknowledgement NLM_F_ACK asked for; the kernel's errors are negative.
      return -answer->error;
    }
  }
  return ETIMEDOUT;
}

}  // namespace sg::nfq
