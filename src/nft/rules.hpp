#pragma once
// The nftables rules that divert SMTP into the daemon's queues, installed and removed through
// libnftnl in one netlink transaction each (all or nothing: a half-installed ruleset never
// exists).
//
// Per hook (forward, input, output) one chain at priority 10 holds, in order:
//   meta mark & INJECT == INJECT accept      packets the daemon sent itself are not queued back
//   tcp flags syn ct mark & DONE == DONE ct mark set ct mark & ~DONE
//                                            a new connection on an old conntrack entry: no
//                                            bypass inherited from the old one
//   tcp flags & (fin | syn | rst) == 0 ct mark & DONE == DONE accept
//                                            flows the daemon finished bypass it in the kernel,
//                                            except the packets that open or end a connection
//   ct mark & MAPPED == MAPPED meta mark set meta mark | MAPPED queue num A-B
//                                            flows whose numbers are mapped: never bypass
//   tcp dport PORT queue num A-B [bypass]    client -> server
//   tcp sport PORT queue num A-B [bypass]    server -> client
// and one chain at priority 11 copies the daemon's verdict mark to the connection:
//   meta mark & DONE == DONE ct mark set ct mark | DONE
// The rules themselves are built in nft/chain_rules.hpp.
#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "config/hook.hpp"
#include "util/expected.hpp"

namespace sg::nft {

// The hooks are a value of the configuration (config/hook.hpp).
using Hook = config::Hook;
using config::hook_name;

struct RuleOptions {
  uint16_t queue_first = 0;
  uint16_t queue_last = 0;
  uint16_t port = 25;
  std::vector<Hook> hooks{Hook::kForward};
  bool bypass = false;              // no listener on the queue: accept instead of drop
  uint32_t done_mark = 0x00100000;  // see config/option_values.hpp for the choice of bit
  // SO_MARK of the daemon's raw sockets (config/option_values.hpp). Non-zero, no bit shared with
  // done_mark.
  uint32_t inject_mark = 0x00200000;
  // Ct mark bit of connections whose sequence numbers the daemon maps (the worker sets it over
  // ctnetlink). Their packets are queued without bypass: with no daemon listening they are
  // dropped (the senders retransmit) instead of passed unmapped, which would corrupt the
  // connection. One bit, none shared with the other marks; 0: no such rule.
  uint32_t mapped_mark = 0x00400000;
};

// How the "queue" statement reached the kernel.
enum class QueueMethod : uint8_t {
  kNative,       // nft_queue expression (CONFIG_NFT_QUEUE)
  kCompatInet,   // xtables NFQUEUE target through nft_compat, in the inet table
  kCompatSplit,  // xtables NFQUEUE target in two tables, ip and ip6
};

const char* queue_method_name(QueueMethod method);

// Whether `portid` is the netlink port of one of this process's last rule transactions. The
// kernel stamps each nftables event with the port of the socket whose transaction caused it;
// the rules watcher (rules_watch.hpp) ignores the events of the daemon's own changes by it. A
// port is unique in the namespace while its socket is open, and the transaction's socket stays
// open until the kernel has acknowledged (and so announced) every change.
bool sent_by_this_process(uint32_t portid);

// struct xt_NFQ_info_v3 {__u16 queuenum; __u16 queues_total; __u16 flags;} in host byte order,
// padded to XT_ALIGN (8 bytes) as iptables-nft sends it.
inline constexpr uint16_t kNfqFlagBypass = 0x1;
inline constexpr uint16_t kNfqFlagCpuFanout = 0x2;  // never set: not flow-consistent
std::array<uint8_t, 8> encode_nfq_info_v3(uint16_t first, uint16_t total, bool bypass);

struct InstallReport {
  QueueMethod method = QueueMethod::kNative;
  std::vector<std::string> tables;  // e.g. "inet smtpguard"
  std::vector<std::string> notes;   // fallbacks taken and why, for the log
};

class RuleSet {
 public:
  static constexpr const char* kTableName = "smtpguard";
  static constexpr int kQueuePriority = 10;
  static constexpr int kMarkPriority = 11;

  explicit RuleSet(RuleOptions options) : options_(std::move(options)) {}

  // Replaces any table of ours (inet, ip, ip6 "smtpguard") with a fresh one in one transaction.
  // Tries the native queue expression first, then the compat NFQUEUE target in the inet table,
  // then the compat target in ip + ip6 tables. Startup only: the error is a sentence.
  Expected<InstallReport, std::string> install();
  // Stops queueing new packets without unregistering any hook: inserts `accept` at the head of
  // each queue chain. Shutdown calls this before the workers drain, and remove() only after:
  // whenever a netfilter hook is unregistered (a base chain deleted, or conntrack's own hooks
  // when its last user in the namespace goes), the kernel drops every packet waiting in any
  // NFQUEUE of the namespace (nf_queue_nf_hook_drop), including the ones the daemon holds.
  Expected<bool, std::string> disarm();
  // Deletes every table of ours, in one transaction; succeeds when there was none.
  Expected<bool, std::string> remove();

  const RuleOptions& options() const { return options_; }

 private:
  RuleOptions options_;
  std::vector<uint16_t> installed_;  // NFPROTO_* of the tables install() created
};

}  // namespace sg::nft
