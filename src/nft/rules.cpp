#include "nft/rules.hpp"

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nft/chain_rules.hpp"

namespace sg::nft {
namespace {

uint32_t hook_number(Hook hook) {
  switch (hook) {
    case Hook::kForward:
      return NF_INET_FORWARD;
    case Hook::kInput:
      return NF_INET_LOCAL_IN;
    case Hook::kOutput:
      return NF_INET_LOCAL_OUT;
  }
  return NF_INET_FORWARD;
}

const char* family_name(uint16_t family) {
  switch (family) {
    case NFPROTO_INET:
      return "inet";
    case NFPROTO_IPV4:
      return "ip";
    case NFPROTO_IPV6:
      return "ip6";
  }
  return "?";
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// The ports of the last transactions' sockets (sent_by_this_process).
class RecentPorts {
 public:
  void add(uint32_t portid) {
    std::lock_guard lock(mutex_);
    ports_[next_++ % ports_.size()] = portid;
  }
  bool contains(uint32_t portid) const {
    std::lock_guard lock(mutex_);
    for (uint32_t p : ports_)
      if (p == portid && p != 0) return true;
    return false;
  }

 private:
  mutable std::mutex mutex_;
  std::array<uint32_t, 16> ports_{};
  size_t next_ = 0;
};

RecentPorts& recent_ports() {
  static RecentPorts ports;
  return ports;
}

// ---- one nfnetlink transaction ----------------------------------------------------------------

struct Failure {
  int err = 0;
  std::string what;         // the message the kernel refused
  bool queue_rule = false;  // it was a rule carrying the queue statement
};

// Builds NFNL_MSG_BATCH_BEGIN, the messages, NFNL_MSG_BATCH_END and commits them. Every message
// asks for an acknowledgement so the failing one can be named.
class Transaction {
 public:
  Transaction() : buf_(kBufferBytes) {
    batch_ = mnl_nlmsg_batch_start(buf_.data(), buf_.size());
    seq_ = static_cast<uint32_t>(time(nullptr));
    nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), seq_++);
    next();
  }
  ~Transaction() { mnl_nlmsg_batch_stop(batch_); }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  void add_table(uint16_t family) { table_message(NFT_MSG_NEWTABLE, family, NLM_F_CREATE); }
  void delete_table(uint16_t family) { table_message(NFT_MSG_DELTABLE, family, 0); }

  void add_chain(uint16_t family, const std::string& name, Hook hook, int priority) {
    nftnl_chain* c = nftnl_chain_alloc();
    if (!c) throw std::bad_alloc();
    nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, RuleSet::kTableName);
    nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name.c_str());
    nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
    nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook_number(hook));
    nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, priority);
    nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
    nlmsghdr* nlh = header(
        NFT_MSG_NEWCHAIN, family, NLM_F_CREATE,
        std::string("add chain ") + family_name(family) + " " + RuleSet::kTableName + " " + name);
    nftnl_chain_nlmsg_build_payload(nlh, c);
    nftnl_chain_free(c);
    next();
  }

  // Appends the rule to the chain, or with `at_head` inserts it before the first rule.
  void add_rule(uint16_t family, const std::string& chain, RulePtr rule, std::string what,
                bool queue_rule = false, bool at_head = false) {
    nftnl_rule_set_str(rule.get(), NFTNL_RULE_TABLE, RuleSet::kTableName);
    nftnl_rule_set_str(rule.get(), NFTNL_RULE_CHAIN, chain.c_str());
    nftnl_rule_set_u32(rule.get(), NFTNL_RULE_FAMILY, family);
    nlmsghdr* nlh =
        header(NFT_MSG_NEWRULE, family, NLM_F_CREATE | (at_head ? 0 : NLM_F_APPEND),
               std::string(at_head ? "insert" : "add") + " rule " + family_name(family) + " " +
                   RuleSet::kTableName + " " + chain + " " + what);
    queue_rules_.back() = queue_rule;
    nftnl_rule_nlmsg_build_payload(nlh, rule.get());
    next();
  }

  // Sends the transaction and waits for every acknowledgement. Returns the first failure.
  std::optional<Failure> commit() {
    nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), seq_++);
    next();
    if (overflow_) return Failure{EMSGSIZE, "the ruleset does not fit in one netlink batch"};

    mnl_socket* nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
    if (!nl) return Failure{errno, "netlink socket"};
    std::unique_ptr<mnl_socket, int (*)(mnl_socket*)> socket(nl, mnl_socket_close);
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) return Failure{errno, "netlink bind"};
    recent_ports().add(mnl_socket_get_portid(nl));
    // Bounded wait: the kernel answers synchronously, a silent socket means something is wrong.
    timeval tv{2, 0};
    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (mnl_socket_sendto(nl, mnl_nlmsg_batch_head(batch_), mnl_nlmsg_batch_size(batch_)) < 0)
      return Failure{errno, "sending the netlink batch"};

    std::vector<char> rx(MNL_SOCKET_BUFFER_SIZE * 4);
    size_t acked = 0;
    std::optional<Failure> failure;
    // Each acknowledged message answers once; a failed transaction may answer fewer, so once a
    // failure is known the socket is only drained of what is already there.
    for (size_t round = 0; round < 4 * descriptions_.size() + 8 && acked < descriptions_.size();
         ++round) {
      ssize_t n = recv(mnl_socket_get_fd(nl), rx.data(), rx.size(), failure ? MSG_DONTWAIT : 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (!failure) failure = Failure{errno == EAGAIN ? ETIMEDOUT : errno, "no answer"};
        break;
      }
      int remaining = static_cast<int>(n);
      for (auto* m = reinterpret_cast<const nlmsghdr*>(rx.data()); mnl_nlmsg_ok(m, remaining);
           m = mnl_nlmsg_next(m, &remaining)) {
        if (m->nlmsg_type != NLMSG_ERROR) continue;
        const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
        ++acked;
        if (e->error != 0 && !failure) {
          Failure f{-e->error, "message " + std::to_string(m->nlmsg_seq)};
          if (m->nlmsg_seq >= first_seq_ && m->nlmsg_seq - first_seq_ < descriptions_.size()) {
            f.what = descriptions_[m->nlmsg_seq - first_seq_];
            f.queue_rule = queue_rules_[m->nlmsg_seq - first_seq_];
          }
          failure = f;
        }
      }
    }
    return failure;
  }

 private:
  // Large enough for three tables, six chains and a dozen rules several times over.
  static constexpr size_t kBufferBytes = 64 * 1024;

  nlmsghdr* header(uint16_t type, uint16_t family, uint16_t flags, std::string what) {
    if (descriptions_.empty()) first_seq_ = seq_;
    descriptions_.push_back(std::move(what));
    queue_rules_.push_back(false);
    return nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), type, family,
                                 flags | NLM_F_ACK, seq_++);
  }

  void table_message(uint16_t type, uint16_t family, uint16_t flags) {
    nftnl_table* t = nftnl_table_alloc();
    if (!t) throw std::bad_alloc();
    nftnl_table_set_str(t, NFTNL_TABLE_NAME, RuleSet::kTableName);
    nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, family);
    nlmsghdr* nlh = header(type, family, flags,
                           std::string(type == NFT_MSG_NEWTABLE ? "add" : "delete") + " table " +
                               family_name(family) + " " + RuleSet::kTableName);
    nftnl_table_nlmsg_build_payload(nlh, t);
    nftnl_table_free(t);
    next();
  }

  void next() {
    if (!mnl_nlmsg_batch_next(batch_)) overflow_ = true;
  }

  std::vector<char> buf_;
  mnl_nlmsg_batch* batch_ = nullptr;
  uint32_t seq_ = 0;
  uint32_t first_seq_ = 0;
  bool overflow_ = false;
  std::vector<std::string> descriptions_;  // per acknowledged message, in sequence order
  std::vector<bool> queue_rules_;
};

constexpr std::array<uint16_t, 3> kAllFamilies = {NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6};

// "add table X; delete table X" deletes X whether or not it existed, inside the transaction:
// the usual nft idiom for an idempotent replace that never fails with ENOENT.
void clear_our_tables(Transaction& tx) {
  for (uint16_t family : kAllFamilies) {
    tx.add_table(family);
    tx.delete_table(family);
  }
}

void add_family(Transaction& tx, uint16_t family, const RuleOptions& o, bool compat) {
  tx.add_table(family);
  for (Hook hook : o.hooks) {
    // Priority 10 runs after the conventional filter chains (priority 0, "filter"): a packet that
    // the host's own ruleset drops or rejects is never queued, so the daemon only sees traffic
    // the firewall already admits, and an operator's block rules keep working unchanged.
    const std::string chain = hook_name(hook);
    tx.add_chain(family, chain, hook, RuleSet::kQueuePriority);
    for (ChainRule& r : queue_chain_rules(o, compat))
      tx.add_rule(family, chain, std::move(r.rule), r.text, r.queues);

    // A queued packet that is accepted resumes at the next hook entry, not at the next rule of
    // the chain that queued it, so the mark is copied to conntrack in a chain of its own, right
    // after the queue chain on the same hook (input traffic never reaches postrouting).
    const std::string mark_chain = chain + "_mark";
    tx.add_chain(family, mark_chain, hook, RuleSet::kMarkPriority);
    for (ChainRule& r : mark_chain_rules(o))
      tx.add_rule(family, mark_chain, std::move(r.rule), r.text, r.queues);
  }
}

std::string describe(const Failure& f) {
  return f.what + ": " + errno_text(f.err);
}

}  // namespace

bool sent_by_this_process(uint32_t portid) {
  return recent_ports().contains(portid);
}

const char* queue_method_name(QueueMethod method) {
  switch (method) {
    case QueueMethod::kNative:
      return "native nft queue";
    case QueueMethod::kCompatInet:
      return "xt NFQUEUE target (inet table)";
    case QueueMethod::kCompatSplit:
      return "xt NFQUEUE target (ip + ip6 tables)";
  }
  return "?";
}

std::array<uint8_t, 8> encode_nfq_info_v3(uint16_t first, uint16_t total, bool bypass) {
  std::array<uint8_t, 8> out{};
  const uint16_t fields[3] = {first, total, bypass ? kNfqFlagBypass : uint16_t{0}};
  std::memcpy(out.data(), fields, sizeof(fields));
  return out;
}

Expected<InstallReport, std::string> RuleSet::install() {
  const RuleOptions& o = options_;
  if (o.hooks.empty()) return unexpected(std::string("no hook selected"));
  if (o.queue_last < o.queue_first) return unexpected(std::string("empty queue range"));
  if (o.done_mark == 0) return unexpected(std::string("the done mark must not be zero"));
  if (o.inject_mark == 0) return unexpected(std::string("the inject mark must not be zero"));
  if ((o.inject_mark & o.done_mark) != 0)
    return unexpected(std::string("the inject mark and the done mark must not share bits"));
  if ((o.mapped_mark & (o.inject_mark | o.done_mark)) != 0)
    return unexpected(std::string("the mapped mark must not share bits with the other marks"));

  InstallReport report;
  const std::string table = RuleSet::kTableName;

  auto attempt = [&](QueueMethod method) {
    Transaction tx;
    clear_our_tables(tx);
    if (method == QueueMethod::kCompatSplit) {
      add_family(tx, NFPROTO_IPV4, o, true);
      add_family(tx, NFPROTO_IPV6, o, true);
    } else {
      add_family(tx, NFPROTO_INET, o, method != QueueMethod::kNative);
    }
    return tx.commit();
  };

  // A kernel without CONFIG_NFT_QUEUE refuses the expression by name (ENOENT once module
  // autoloading found nothing, EOPNOTSUPP on some versions): only that falls back.
  auto missing_feature = [](const Failure& f) {
    return f.queue_rule && (f.err == ENOENT || f.err == EOPNOTSUPP || f.err == EAFNOSUPPORT ||
                            f.err == EPROTONOSUPPORT || f.err == EINVAL);
  };

  auto failure = attempt(QueueMethod::kNative);
  if (!failure) {
    report.method = QueueMethod::kNative;
    report.tables = {"inet " + table};
    installed_ = {NFPROTO_INET};
    return report;
  }
  if (!missing_feature(*failure)) return unexpected("installing rules: " + describe(*failure));
  report.notes.push_back("the kernel has no native nft queue expression (" + describe(*failure) +
                         "); using the xtables NFQUEUE target through nft_compat");

  failure = attempt(QueueMethod::kCompatInet);
  if (!failure) {
    report.method = QueueMethod::kCompatInet;
    report.tables = {"inet " + table};
    installed_ = {NFPROTO_INET};
    return report;
  }
  if (!missing_feature(*failure)) return unexpected("installing rules: " + describe(*failure));
  report.notes.push_back("the kernel refuses the NFQUEUE target in an inet table (" +
                         describe(*failure) + "); using two tables, ip and ip6");

  failure = attempt(QueueMethod::kCompatSplit);
  if (!failure) {
    report.method = QueueMethod::kCompatSplit;
    report.tables = {"ip " + table, "ip6 " + table};
    installed_ = {NFPROTO_IPV4, NFPROTO_IPV6};
    return report;
  }
  return unexpected("installing rules: " + describe(*failure));
}

Expected<bool, std::string> RuleSet::disarm() {
  if (installed_.empty()) return true;
  // An unconditional accept in front of the queue rules, rather than deleting them: deleting the
  // ct expressions can drop the namespace's last conntrack user, and unregistering conntrack's
  // hooks drops every queued packet just like deleting a base chain does.
  Transaction tx;
  for (uint16_t family : installed_) {
    for (Hook hook : options_.hooks) {
      ChainRule pass = pass_rule();
      tx.add_rule(family, hook_name(hook), std::move(pass.rule), pass.text, false, true);
    }
  }
  if (auto failure = tx.commit()) return unexpected("disarming rules: " + describe(*failure));
  return true;
}

Expected<bool, std::string> RuleSet::remove() {
  Transaction tx;
  clear_our_tables(tx);
  if (auto failure = tx.commit()) return unexpected("removing rules: " + describe(*failure));
  installed_.clear();
  return true;
}

}  // namespace sg::nft
