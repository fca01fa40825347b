// The ctnetlink request that makes a conntrack entry liberal, parsed back attribute by attribute
// with libmnl as the kernel would read it. Sending it is checked by hand against a real kernel
// (namespaces); nothing here opens a socket.
#include "nfq/conntrack.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace sg::nfq {
namespace {

using Bytes = std::vector<uint8_t>;

net::IpAddress address(const char* text) {
  net::IpAddress a;
  if (inet_pton(AF_INET, text, a.bytes.data() + 12) == 1) {
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    return a;
  }
  REQUIRE(inet_pton(AF_INET6, text, a.bytes.data()) == 1);
  return a;
}

core::MappedFlow flow(const char* client, uint16_t client_port, const char* server,
                      uint16_t server_port) {
  return core::MappedFlow{address(client), address(server), client_port, server_port};
}

// The attributes of one nesting level by type, in the order they came, and whether each carried
// NLA_F_NESTED.
struct Level {
  std::vector<uint16_t> order;
  std::map<uint16_t, const nlattr*> by_type;

  const nlattr* at(uint16_t type) const {
    auto it = by_type.find(type);
    REQUIRE(it != by_type.end());
    return it->second;
  }
  Bytes payload(uint16_t type) const {
    const nlattr* a = at(type);
    const auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(a));
    return Bytes(p, p + mnl_attr_get_payload_len(a));
  }
};

int collect(const nlattr* attr, void* data) {
  auto* level = static_cast<Level*>(data);
  const auto type = static_cast<uint16_t>(mnl_attr_get_type(attr));
  level->order.push_back(type);
  level->by_type[type] = attr;
  return MNL_CB_OK;
}

Level top_level(const ConntrackRequest& r) {
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(r.bytes.data());
  Level level;
  REQUIRE(mnl_attr_parse(nlh, sizeof(nfgenmsg), collect, &level) == MNL_CB_OK);
  return level;
}

Level nested(const nlattr* nest) {
  // Every container is marked NLA_F_NESTED, as libmnl and libnetfilter_conntrack write them;
  // the kernel takes either.
  CHECK((nest->nla_type & NLA_F_NESTED) != 0);
  CHECK(mnl_attr_validate(nest, MNL_TYPE_NESTED) == 0);
  Level level;
  REQUIRE(mnl_attr_parse_nested(nest, collect, &level) == MNL_CB_OK);
  return level;
}

Bytes bytes_of(const net::IpAddress& a, size_t from, size_t n) {
  return Bytes(a.bytes.begin() + static_cast<long>(from),
               a.bytes.begin() + static_cast<long>(from + n));
}

Bytes be16(uint16_t v) {
  return Bytes{static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v & 0xff)};
}

}  // namespace

TEST_CASE("liberal request: an update of an existing IPCTNL_MSG_CT_NEW entry, acknowledged") {
  const ConntrackRequest r =
      build_liberal_request(flow("198.18.1.2", 40000, "198.18.2.2", 25), TupleKind::kOriginal, 7);
  REQUIRE(r.size >= sizeof(nlmsghdr) + sizeof(nfgenmsg));
  REQUIRE(r.size <= r.bytes.size());
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(r.bytes.data());
  int len = static_cast<int>(r.size);
  REQUIRE(mnl_nlmsg_ok(nlh, len));
  CHECK(nlh->nlmsg_len == r.size);
  CHECK(r.view().size() == r.size);
  CHECK(nlh->nlmsg_type == ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW));
  CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_ACK));
  // Without NLM_F_CREATE the kernel never creates an entry; with NLM_F_EXCL it would refuse to
  // change one.
  CHECK((nlh->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL | NLM_F_REPLACE)) == 0);
  CHECK(nlh->nlmsg_seq == 7u);
  CHECK(nlh->nlmsg_pid == 0u);
  const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
  CHECK(nfg->nfgen_family == AF_INET);
  CHECK(nfg->version == NFNETLINK_V0);
  CHECK(nfg->res_id == 0);

  // Exactly the tuple and the protocol info: no status, timeout, mark or NAT to change.
  const Level top = top_level(r);
  CHECK(top.order == std::vector<uint16_t>{CTA_TUPLE_ORIG, CTA_PROTOINFO});
}

TEST_CASE("liberal request: an IPv4 original tuple in network byte order") {
  const core::MappedFlow f = flow("198.18.1.2", 40000, "198.18.2.2", 25);
  // The levels point into the request: it must outlive them.
  const ConntrackRequest r = build_liberal_request(f, TupleKind::kOriginal, 1);
  const Level tuple = nested(top_level(r).at(CTA_TUPLE_ORIG));
  CHECK(tuple.order == std::vector<uint16_t>{CTA_TUPLE_IP, CTA_TUPLE_PROTO});

  const Level ip = nested(tuple.at(CTA_TUPLE_IP));
  CHECK(ip.order == std::vector<uint16_t>{CTA_IP_V4_SRC, CTA_IP_V4_DST});
  CHECK(ip.payload(CTA_IP_V4_SRC) == Bytes{198, 18, 1, 2});
  CHECK(ip.payload(CTA_IP_V4_DST) == Bytes{198, 18, 2, 2});
  CHECK(mnl_attr_validate(ip.at(CTA_IP_V4_SRC), MNL_TYPE_U32) == 0);

  const Level proto = nested(tuple.at(CTA_TUPLE_PROTO));
  CHECK(proto.order ==
        std::vector<uint16_t>{CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT});
  CHECK(mnl_attr_validate(proto.at(CTA_PROTO_NUM), MNL_TYPE_U8) == 0);
  CHECK(mnl_attr_get_u8(proto.at(CTA_PROTO_NUM)) == IPPROTO_TCP);
  CHECK(mnl_attr_validate(proto.at(CTA_PROTO_SRC_PORT), MNL_TYPE_U16) == 0);
  CHECK(proto.payload(CTA_PROTO_SRC_PORT) == be16(40000));  // 0x9c40, high byte first
  CHECK(proto.payload(CTA_PROTO_DST_PORT) == be16(25));
  CHECK(ntohs(mnl_attr_get_u16(proto.at(CTA_PROTO_SRC_PORT))) == 40000);
}

TEST_CASE("liberal request: the reply tuple is server to client") {
  const core::MappedFlow f = flow("198.18.1.2", 40000, "198.18.2.2", 25);
  const ConntrackRequest r = build_liberal_request(f, TupleKind::kReply, 2);
  const Level top = top_level(r);
  CHECK(top.order == std::vector<uint16_t>{CTA_TUPLE_REPLY, CTA_PROTOINFO});
  const Level tuple = nested(top.at(CTA_TUPLE_REPLY));
  const Level ip = nested(tuple.at(CTA_TUPLE_IP));
  CHECK(ip.payload(CTA_IP_V4_SRC) == Bytes{198, 18, 2, 2});
  CHECK(ip.payload(CTA_IP_V4_DST) == Bytes{198, 18, 1, 2});
  const Level proto = nested(tuple.at(CTA_TUPLE_PROTO));
  CHECK(mnl_attr_get_u8(proto.at(CTA_PROTO_NUM)) == IPPROTO_TCP);
  CHECK(proto.payload(CTA_PROTO_SRC_PORT) == be16(25));
  CHECK(proto.payload(CTA_PROTO_DST_PORT) == be16(40000));
}

TEST_CASE("liberal request: IPv6 addresses whole, family AF_INET6") {
  const core::MappedFlow f = flow("2001:db8:1::2", 51234, "2001:db8:2::2", 25);
  REQUIRE_FALSE(f.client.is_v4());
  auto kind = GENERATE(TupleKind::kOriginal, TupleKind::kReply);
  const ConntrackRequest r = build_liberal_request(f, kind, 3);
  // The largest request there is: the buffer's bound is checked here.
  CHECK(r.size == 120);
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(r.bytes.data());
  CHECK(static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh))->nfgen_family == AF_INET6);

  const bool reply = kind == TupleKind::kReply;
  const Level top = top_level(r);
  const Level tuple = nested(top.at(reply ? CTA_TUPLE_REPLY : CTA_TUPLE_ORIG));
  const Level ip = nested(tuple.at(CTA_TUPLE_IP));
  CHECK(ip.order == std::vector<uint16_t>{CTA_IP_V6_SRC, CTA_IP_V6_DST});
  CHECK(ip.payload(CTA_IP_V6_SRC) == bytes_of(reply ? f.server : f.client, 0, 16));
  CHECK(ip.payload(CTA_IP_V6_DST) == bytes_of(reply ? f.client : f.server, 0, 16));
  const Level proto = nested(tuple.at(CTA_TUPLE_PROTO));
  CHECK(proto.payload(CTA_PROTO_SRC_PORT) == be16(reply ? 25 : 51234));
  CHECK(proto.payload(CTA_PROTO_DST_PORT) == be16(reply ? 51234 : 25));
}

TEST_CASE("liberal request: BE_LIBERAL as flag and mask for both directions, nothing else") {
  auto f = GENERATE(flow("198.18.1.2", 40000, "198.18.2.2", 25),
                    flow("2001:db8:1::2", 51234, "2001:db8:2::2", 25));
  auto kind = GENERATE(TupleKind::kOriginal, TupleKind::kReply);
  const ConntrackRequest r = build_liberal_request(f, kind, 4);
  const Level info = nested(top_level(r).at(CTA_PROTOINFO));
  CHECK(info.order == std::vector<uint16_t>{CTA_PROTOINFO_TCP});
  const Level tcp = nested(info.at(CTA_PROTOINFO_TCP));
  // No CTA_PROTOINFO_TCP_STATE (the state machine stays the kernel's), no window scales.
  CHECK(tcp.order ==
        std::vector<uint16_t>{CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, CTA_PROTOINFO_TCP_FLAGS_REPLY});
  // struct nf_ct_tcp_flags { flags, mask }: the kernel keeps every bit outside the mask.
  static_assert(sizeof(nf_ct_tcp_flags) == 2);
  const Bytes liberal{IP_CT_TCP_FLAG_BE_LIBERAL, IP_CT_TCP_FLAG_BE_LIBERAL};
  CHECK(liberal == Bytes{0x08, 0x08});
  CHECK(tcp.payload(CTA_PROTOINFO_TCP_FLAGS_ORIGINAL) == liberal);
  CHECK(tcp.payload(CTA_PROTOINFO_TCP_FLAGS_REPLY) == liberal);
  // Two bytes of payload, padded to four: the next attribute starts aligned.
  CHECK(tcp.at(CTA_PROTOINFO_TCP_FLAGS_ORIGINAL)->nla_len == 6);
}

TEST_CASE("liberal request: sequence numbers tell the answers apart") {
  const core::MappedFlow f = flow("198.18.1.2", 40000, "198.18.2.2", 25);
  for (uint32_t seq : {1u, 2u, 0xffffffffu}) {
    const ConntrackRequest r = build_liberal_request(f, TupleKind::kOriginal, seq);
    CHECK(reinterpret_cast<const nlmsghdr*>(r.bytes.data())->nlmsg_seq == seq);
  }
}

TEST_CASE("update request: the mapped bit as CTA_MARK and CTA_MARK_MASK, big-endian") {
  auto f = GENERATE(flow("198.18.1.2", 40000, "198.18.2.2", 25),
                    flow("2001:db8:1::2", 51234, "2001:db8:2::2", 25));
  const ConntrackRequest r =
      build_update_request(f, TupleKind::kOriginal, 5, ConntrackUpdate{true, 0x00400000});
  const Level top = top_level(r);
  // ctnetlink_change_mark: new = (old & ~mask) ^ mark, so mark == mask sets exactly that bit.
  CHECK(top.payload(CTA_MARK) == Bytes{0x00, 0x40, 0x00, 0x00});
  CHECK(top.payload(CTA_MARK_MASK) == Bytes{0x00, 0x40, 0x00, 0x00});
  CHECK(top.order == std::vector<uint16_t>{CTA_TUPLE_ORIG, CTA_PROTOINFO, CTA_MARK, CTA_MARK_MASK});
  // Same tuple as the liberal request.
  const ConntrackRequest liberal_request = build_liberal_request(f, TupleKind::kOriginal, 5);
  const Level liberal = top_level(liberal_request);  // points into liberal_request
  CHECK(top.payload(CTA_TUPLE_ORIG) == liberal.payload(CTA_TUPLE_ORIG));
}

TEST_CASE("update request: the mark alone, without the liberal flags") {
  const core::MappedFlow f = flow("198.18.1.2", 40000, "198.18.2.2", 25);
  const ConntrackRequest r =
      build_update_request(f, TupleKind::kReply, 6, ConntrackUpdate{false, 0x80000000u});
  const Level top = top_level(r);
  CHECK(top.order == std::vector<uint16_t>{CTA_TUPLE_REPLY, CTA_MARK, CTA_MARK_MASK});
  CHECK(top.payload(CTA_MARK) == Bytes{0x80, 0x00, 0x00, 0x00});
  // The liberal request is the update without a mark: nothing else changes.
  const ConntrackRequest liberal = build_liberal_request(f, TupleKind::kReply, 6);
  const ConntrackRequest same =
      build_update_request(f, TupleKind::kReply, 6, ConntrackUpdate{true, 0});
  CHECK(Bytes(liberal.view().begin(), liberal.view().end()) ==
        Bytes(same.view().begin(), same.view().end()));
  CHECK(top_level(liberal).by_type.count(CTA_MARK) == 0);
}

TEST_CASE("conntrack counters: declared once, named as printed") {
  REQUIRE(kConntrackCounterInfo.size() == 4);
  CHECK(kConntrackCounterInfo[0].name == "conntrack_liberal_set");
  CHECK(kConntrackCounterInfo[1].name == "conntrack_mapped_marked");
  CHECK(kConntrackCounterInfo[2].name == "conntrack_not_found");
  CHECK(kConntrackCounterInfo[3].name == "conntrack_errors");
  ConntrackCounters c;
  c.add(ConntrackCounter::conntrack_not_found, 2);
  CHECK(c.get(ConntrackCounter::conntrack_not_found) == 2);
  CHECK(c.get(ConntrackCounter::conntrack_liberal_set) == 0);
}

}  // namespace sg::nfq
