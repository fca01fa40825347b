#pragma once
// The rules of smtpguard's chains as libnftnl rules, built expression by expression: the same
// expressions nft compiles from the text beside each (compare `nft --debug=netlink list ruleset`
// with nft/smtpguard.nft). Nothing here talks to the kernel: RuleSet (rules.hpp) sends them, the
// unit tests read them back.
//
// Queue chain, in order (the mapped rule only with a non-zero mapped mark):
//   meta mark & INJECT == INJECT accept
//   tcp flags syn ct mark & DONE == DONE ct mark set ct mark & ~DONE
//   tcp flags & (fin | syn | rst) == 0 ct mark & DONE == DONE accept
//   ct mark & MAPPED == MAPPED meta mark set meta mark | MAPPED queue num A-B
//   tcp dport PORT queue num A-B [bypass]
//   tcp sport PORT queue num A-B [bypass]
// Mark chain:
//   meta mark & DONE == DONE ct mark set ct mark | DONE
#include <libnftnl/rule.h>

#include <memory>
#include <string>
#include <vector>

#include "nft/rules.hpp"

namespace sg::nft {

struct RuleDeleter {
  void operator()(nftnl_rule* r) const { nftnl_rule_free(r); }
};
using RulePtr = std::unique_ptr<nftnl_rule, RuleDeleter>;

struct ChainRule {
  RulePtr rule;         // expressions only: table, chain and family are set when it is sent
  std::string text;     // in nft syntax, with the marks by name, for messages
  bool queues = false;  // carries the queue statement (the one a kernel may lack)
};

// `compat`: the xtables NFQUEUE target through nft_compat instead of the native queue expression.
std::vector<ChainRule> queue_chain_rules(const RuleOptions& o, bool compat);
std::vector<ChainRule> mark_chain_rules(const RuleOptions& o);
// `counter accept`, put at the head of a queue chain to stop queueing (RuleSet::disarm).
ChainRule pass_rule();

}  // namespace sg::nft
