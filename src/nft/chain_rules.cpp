#include "nft/chain_rules.hpp"

#include <arpa/inet.h>
#include <libnftnl/expr.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "net/wire.hpp"

namespace sg::nft {
namespace {

constexpr uint32_t kReg = NFT_REG_1;

using net::kTcpFin;
using net::kTcpRst;
using net::kTcpSyn;

// ---- expressions: each appends one to the rule ------------------------------------------------

nftnl_expr* new_expr(nftnl_rule* rule, const char* name) {
  nftnl_expr* e = nftnl_expr_alloc(name);
  if (!e) throw std::bad_alloc();
  nftnl_rule_add_expr(rule, e);
  return e;
}

// A meta or ct expression moving `key` between the packet or connection and the register:
// loaded into it (register attribute DREG) or stored from it (SREG).
void key_reg(nftnl_rule* rule, const char* name, uint16_t key_attr, uint32_t key,
             uint16_t reg_attr) {
  nftnl_expr* e = new_expr(rule, name);
  nftnl_expr_set_u32(e, key_attr, key);
  nftnl_expr_set_u32(e, reg_attr, kReg);
}

void meta_load(nftnl_rule* rule, uint32_t key) {
  key_reg(rule, "meta", NFTNL_EXPR_META_KEY, key, NFTNL_EXPR_META_DREG);
}
void meta_store(nftnl_rule* rule, uint32_t key) {
  key_reg(rule, "meta", NFTNL_EXPR_META_KEY, key, NFTNL_EXPR_META_SREG);
}
void ct_load(nftnl_rule* rule, uint32_t key) {
  key_reg(rule, "ct", NFTNL_EXPR_CT_KEY, key, NFTNL_EXPR_CT_DREG);
}
void ct_store(nftnl_rule* rule, uint32_t key) {
  key_reg(rule, "ct", NFTNL_EXPR_CT_KEY, key, NFTNL_EXPR_CT_SREG);
}

void payload_load(nftnl_rule* rule, uint32_t base, uint32_t offset, uint32_t len) {
  nftnl_expr* e = new_expr(rule, "payload");
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, kReg);
}

void cmp(nftnl_rule* rule, uint32_t op, const void* data, uint32_t len) {
  nftnl_expr* e = new_expr(rule, "cmp");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, kReg);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
  nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
}

void cmp_eq(nftnl_rule* rule, const void* data, uint32_t len) {
  cmp(rule, NFT_CMP_EQ, data, len);
}

// reg = (reg & mask) ^ xor over `len` bytes: "& m" is (m, 0), "| m" is (~m, m).
void bitwise(nftnl_rule* rule, const void* mask, const void* xor_value, uint32_t len) {
  nftnl_expr* e = new_expr(rule, "bitwise");
  nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, kReg);
  nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, kReg);
  nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
  nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
  nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, xor_value, len);
}

void bitwise32(nftnl_rule* rule, uint32_t mask, uint32_t xor_value) {
  bitwise(rule, &mask, &xor_value, sizeof(uint32_t));
}

void counter(nftnl_rule* rule) {
  new_expr(rule, "counter");
}

void accept(nftnl_rule* rule) {
  nftnl_expr* e = new_expr(rule, "immediate");
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_ACCEPT);
}

// Marks are 32-bit host-order values in nftables registers (meta mark, ct mark).
void match_mark_bit(nftnl_rule* rule, uint32_t mark) {
  bitwise32(rule, mark, 0);
  cmp_eq(rule, &mark, sizeof(mark));
}

void match_tcp(nftnl_rule* rule) {
  meta_load(rule, NFT_META_L4PROTO);
  uint8_t tcp = IPPROTO_TCP;
  cmp_eq(rule, &tcp, sizeof(tcp));
}

void match_tcp_port(nftnl_rule* rule, uint32_t offset, uint16_t port) {
  match_tcp(rule);
  payload_load(rule, NFT_PAYLOAD_TRANSPORT_HEADER, offset, sizeof(uint16_t));
  uint16_t be_port = htons(port);
  cmp_eq(rule, &be_port, sizeof(be_port));
}

// "tcp flags & mask == 0" (`none`) or "tcp flags & mask != 0" (any of them), as nft compiles
// `tcp flags & (fin | syn | rst) == 0` and `tcp flags syn`.
void match_tcp_flags(nftnl_rule* rule, uint8_t mask, bool any) {
  match_tcp(rule);
  payload_load(rule, NFT_PAYLOAD_TRANSPORT_HEADER, net::kTcpFlagsAt, sizeof(uint8_t));
  const uint8_t zero = 0;
  bitwise(rule, &mask, &zero, sizeof(uint8_t));
  cmp(rule, any ? NFT_CMP_NEQ : NFT_CMP_EQ, &zero, sizeof(zero));
}

// ct mark = (ct mark & mask) ^ xor.
void ct_mark_set(nftnl_rule* rule, uint32_t mask, uint32_t xor_value) {
  ct_load(rule, NFT_CT_MARK);
  bitwise32(rule, mask, xor_value);
  ct_store(rule, NFT_CT_MARK);
}

void queue_statement(nftnl_rule* rule, const RuleOptions& o, bool compat, bool bypass) {
  uint16_t total = static_cast<uint16_t>(o.queue_last - o.queue_first + 1);
  if (!compat) {
    nftnl_expr* e = new_expr(rule, "queue");
    nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_NUM, o.queue_first);
    nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_TOTAL, total);
    nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_FLAGS, bypass ? NFT_QUEUE_FLAG_BYPASS : 0);
    return;
  }
  // What iptables-nft emits for -j NFQUEUE --queue-balance A:B [--queue-bypass].
  auto info = encode_nfq_info_v3(o.queue_first, total, bypass);
  nftnl_expr* e = new_expr(rule, "target");
  nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE");
  nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, 3);
  // libnftnl keeps (and later frees) the pointer it is given for the target info: malloc it.
  void* owned = std::malloc(info.size());
  if (!owned) throw std::bad_alloc();
  std::memcpy(owned, info.data(), info.size());
  nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, owned, info.size());
}

std::string queue_text(const RuleOptions& o, bool bypass, bool compat) {
  std::string s = "queue num " + std::to_string(o.queue_first);
  if (o.queue_last != o.queue_first) s += "-" + std::to_string(o.queue_last);
  if (bypass) s += " bypass";
  if (compat) s += " (xt NFQUEUE)";
  return s;
}

RulePtr new_rule() {
  RulePtr r(nftnl_rule_alloc());
  if (!r) throw std::bad_alloc();
  return r;
}

}  // namespace

std::vector<ChainRule> queue_chain_rules(const RuleOptions& o, bool compat) {
  std::vector<ChainRule> rules;

  // (0) Packets the daemon originates (answers, resets) leave through its raw sockets with the
  // inject mark. They cross the output hook, where queueing them would hand them back to the
  // daemon as if a peer had sent them; in the other hooks the rule never matches and costs
  // one comparison.
  RulePtr injected = new_rule();
  meta_load(injected.get(), NFT_META_MARK);
  match_mark_bit(injected.get(), o.inject_mark);
  counter(injected.get());
  accept(injected.get());
  rules.push_back({std::move(injected), "meta mark & inject_mark == inject_mark accept"});

  // (a) A SYN is a new connection, whatever conntrack made of it: after a reset, or from
  // CLOSE/TIME_WAIT, conntrack can take a new handshake into the old entry, ct mark and all.
  // The done bit belongs to the old connection: the new one must be inspected from its first
  // packet, so the SYN clears the bit before (b) looks at it. The SYN-ACK clears it too, which
  // changes nothing by then. Matching the set bit first keeps other SYNs from writing the ct
  // mark (and counts the clears).
  RulePtr clear = new_rule();
  match_tcp_flags(clear.get(), kTcpSyn, true);
  ct_load(clear.get(), NFT_CT_MARK);
  match_mark_bit(clear.get(), o.done_mark);
  counter(clear.get());
  ct_mark_set(clear.get(), ~o.done_mark, 0);
  rules.push_back({std::move(clear),
                   "tcp flags syn ct mark & done_mark == done_mark ct mark set ct mark & "
                   "~done_mark"});

  // (b) Connections the daemon finished with (STARTTLS, reset, ...) skip the queue - except
  // their SYN, FIN and RST: those open or end a connection, and the daemon must see each, so
  // that no bypass ever reaches over into a connection it has not inspected (and it learns of
  // the end of the ones it bypasses).
  RulePtr bypass = new_rule();
  match_tcp_flags(bypass.get(), kTcpFin | kTcpSyn | kTcpRst, false);
  ct_load(bypass.get(), NFT_CT_MARK);
  match_mark_bit(bypass.get(), o.done_mark);
  counter(bypass.get());
  accept(bypass.get());
  rules.push_back({std::move(bypass),
                   "tcp flags & (fin | syn | rst) == 0 ct mark & done_mark == done_mark accept"});

  // (c) Connections whose sequence numbers the daemon maps go to the queue WITHOUT bypass,
  // whatever the fail-open setting: passed unmapped, their segments would land at the wrong
  // offsets in the receiver's stream (trimmed as old data, or a stall). With no daemon they
  // are dropped and retransmitted; a new daemon resets them. The same queue range and the
  // same kind of queue statement as (d): the symmetric hash sends the connection to the same
  // worker as before.
  if (o.mapped_mark != 0) {
    RulePtr mapped = new_rule();
    ct_load(mapped.get(), NFT_CT_MARK);
    match_mark_bit(mapped.get(), o.mapped_mark);
    // The packet carries the bit to the daemon in its mark (NFQA_MARK): the conntrack
    // attributes of a queued packet (NFQA_CT) need CONFIG_NETFILTER_NETLINK_GLUE_CT, which
    // many kernels lack.
    meta_load(mapped.get(), NFT_META_MARK);
    bitwise32(mapped.get(), ~o.mapped_mark, o.mapped_mark);
    meta_store(mapped.get(), NFT_META_MARK);
    counter(mapped.get());
    queue_statement(mapped.get(), o, compat, false);
    rules.push_back({std::move(mapped),
                     "ct mark & mapped_mark == mapped_mark meta mark set meta mark | mapped_mark " +
                         queue_text(o, false, compat),
                     true});
  }

  // (d) Both directions: the queue hash is symmetric, so a connection stays in one queue.
  const std::string port = std::to_string(o.port);
  for (auto [offset, dir] : {std::pair<uint32_t, const char*>{2, "dport"}, {0, "sport"}}) {
    RulePtr q = new_rule();
    match_tcp_port(q.get(), offset, o.port);
    counter(q.get());
    queue_statement(q.get(), o, compat, o.bypass);
    rules.push_back({std::move(q),
                     std::string("tcp ") + dir + " " + port + " " + queue_text(o, o.bypass, compat),
                     true});
  }
  return rules;
}

std::vector<ChainRule> mark_chain_rules(const RuleOptions& o) {
  std::vector<ChainRule> rules;
  RulePtr save = new_rule();
  meta_load(save.get(), NFT_META_MARK);
  match_mark_bit(save.get(), o.done_mark);
  ct_mark_set(save.get(), ~o.done_mark, o.done_mark);
  rules.push_back(
      {std::move(save), "meta mark & done_mark == done_mark ct mark set ct mark | done_mark"});
  return rules;
}

ChainRule pass_rule() {
  RulePtr pass = new_rule();
  counter(pass.get());
  accept(pass.get());
  return {std::move(pass), "accept"};
}

}  // namespace sg::nft
