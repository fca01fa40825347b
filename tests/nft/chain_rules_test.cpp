// The expressions of smtpguard's chains, read back with libnftnl's own printer: the format of
// `nft --debug=netlink list ruleset`. The expected lists are what nft 1.0.6 compiles from the
// matching lines of nft/smtpguard.nft, so the installer and the shipped file stay one ruleset.
#include <catch2/catch.hpp>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "config/worker_plan.hpp"
#include "nft/chain_rules.hpp"

using sg::nft::ChainRule;
using sg::nft::RuleOptions;

namespace {

// The rule's expressions, one "[ ... ]" per element.
std::vector<std::string> expressions(const ChainRule& r) {
  std::vector<char> buf(8192);
  nftnl_rule_snprintf(buf.data(), buf.size(), r.rule.get(), NFTNL_OUTPUT_DEFAULT, 0);
  std::vector<std::string> out;
  std::istringstream in(buf.data());
  for (std::string line; std::getline(in, line);) {
    const auto open = line.find('[');
    const auto close = line.rfind(']');
    if (open != std::string::npos && close != std::string::npos && close > open)
      out.push_back(line.substr(open, close - open + 1));
  }
  return out;
}

std::string hex32(uint32_t v) {
  char s[16];
  std::snprintf(s, sizeof(s), "0x%08x", v);
  return s;
}

const ChainRule& rule_with(const std::vector<ChainRule>& rules, const std::string& start) {
  for (const ChainRule& r : rules)
    if (r.text.rfind(start, 0) == 0) return r;
  FAIL("no rule starting with " << start);
  return rules.front();
}

constexpr const char* kClearText =
    "tcp flags syn ct mark & done_mark == done_mark ct mark set ct mark & ~done_mark";
constexpr const char* kBypassText =
    "tcp flags & (fin | syn | rst) == 0 ct mark & done_mark == done_mark accept";

}  // namespace

TEST_CASE("a SYN clears the done bit of its conntrack entry, and nothing else") {
  // nft: tcp flags syn ct mark & $done_mark == $done_mark counter
  //      ct mark set ct mark & (0xffffffff ^ $done_mark)
  RuleOptions o;
  o.done_mark = GENERATE(0x00100000u, 0x1u, 0x80000000u);
  INFO("done mark " << hex32(o.done_mark));
  const auto rules = sg::nft::queue_chain_rules(o, false);
  const ChainRule& clear = rule_with(rules, "tcp flags syn");
  CHECK(clear.text == kClearText);
  CHECK_FALSE(clear.queues);
  CHECK(expressions(clear) ==
        std::vector<std::string>{
            "[ meta load l4proto => reg 1 ]",
            "[ cmp eq reg 1 0x00000006 ]",
            "[ payload load 1b @ transport header + 13 => reg 1 ]",
            "[ bitwise reg 1 = ( reg 1 & 0x00000002 ) ^ 0x00000000 ]",  // any SYN, SYN-ACK too
            "[ cmp neq reg 1 0x00000000 ]",
            "[ ct load mark => reg 1 ]",
            "[ bitwise reg 1 = ( reg 1 & " + hex32(o.done_mark) + " ) ^ 0x00000000 ]",
            "[ cmp eq reg 1 " + hex32(o.done_mark) + " ]",
            "[ counter pkts 0 bytes 0 ]",
            "[ ct load mark => reg 1 ]",
            "[ bitwise reg 1 = ( reg 1 & " + hex32(~o.done_mark) + " ) ^ 0x00000000 ]",
            "[ ct set mark with reg 1 ]",
        });
}

TEST_CASE("the done-mark bypass never takes a SYN, a FIN or a RST") {
  // nft: tcp flags & (fin | syn | rst) == 0 ct mark & $done_mark == $done_mark counter accept
  RuleOptions o;
  o.done_mark = GENERATE(0x00100000u, 0x4u);
  INFO("done mark " << hex32(o.done_mark));
  for (bool compat : {false, true}) {
    INFO((compat ? "xt NFQUEUE" : "native queue"));
    const auto rules = sg::nft::queue_chain_rules(o, compat);
    const ChainRule& bypass = rule_with(rules, "tcp flags & (fin | syn | rst)");
    CHECK(bypass.text == kBypassText);
    CHECK_FALSE(bypass.queues);
    CHECK(expressions(bypass) ==
          std::vector<std::string>{
              "[ meta load l4proto => reg 1 ]",
              "[ cmp eq reg 1 0x00000006 ]",
              "[ payload load 1b @ transport header + 13 => reg 1 ]",
              "[ bitwise reg 1 = ( reg 1 & 0x00000007 ) ^ 0x00000000 ]",  // fin | syn | rst
              "[ cmp eq reg 1 0x00000000 ]",
              "[ ct load mark => reg 1 ]",
              "[ bitwise reg 1 = ( reg 1 & " + hex32(o.done_mark) + " ) ^ 0x00000000 ]",
              "[ cmp eq reg 1 " + hex32(o.done_mark) + " ]",
              "[ counter pkts 0 bytes 0 ]",
              "[ immediate reg 0 accept ]",
          });
  }
}

TEST_CASE("queue chain order: own packets, SYN clears, bypass, mapped, then the port rules") {
  // The SYN must lose the old connection's done bit before the bypass rule reads it; the mapped
  // rule keeps its place after the bypass (a mapped flow is never done-marked: the daemon only
  // marks flows it never resized) and before the port rules, whose `bypass` it must not get.
  struct Case {
    const char* description;
    uint32_t mapped_mark;
    bool compat;
    std::vector<std::string> texts;
  };
  auto c = GENERATE(
      Case{"native, mapped rule",
           0x00400000,
           false,
           {"meta mark & inject_mark == inject_mark accept", kClearText, kBypassText,
            "ct mark & mapped_mark == mapped_mark meta mark set meta mark | mapped_mark queue num "
            "0",
            "tcp dport 25 queue num 0", "tcp sport 25 queue num 0"}},
      Case{"xt NFQUEUE, mapped rule",
           0x00400000,
           true,
           {"meta mark & inject_mark == inject_mark accept", kClearText, kBypassText,
            "ct mark & mapped_mark == mapped_mark meta mark set meta mark | mapped_mark queue num "
            "0 (xt NFQUEUE)",
            "tcp dport 25 queue num 0 (xt NFQUEUE)", "tcp sport 25 queue num 0 (xt NFQUEUE)"}},
      Case{"no mapped mark",
           0,
           false,
           {"meta mark & inject_mark == inject_mark accept", kClearText, kBypassText,
            "tcp dport 25 queue num 0", "tcp sport 25 queue num 0"}});
  INFO(c.description);
  RuleOptions o;
  o.mapped_mark = c.mapped_mark;
  const auto rules = sg::nft::queue_chain_rules(o, c.compat);
  std::vector<std::string> texts;
  for (const ChainRule& r : rules) texts.push_back(r.text);
  CHECK(texts == c.texts);
  // Only the rules that carry a queue statement are marked so (the installer's fallback keys
  // on a refused queue rule).
  for (const ChainRule& r : rules) {
    INFO(r.text);
    CHECK(r.queues == (r.text.find("queue num") != std::string::npos));
  }
}

TEST_CASE("the mapped rule queues without bypass, with the packet mark, as before") {
  RuleOptions o;
  o.bypass = true;
  const auto rules = sg::nft::queue_chain_rules(o, false);
  const ChainRule& mapped = rule_with(rules, "ct mark & mapped_mark");
  CHECK(expressions(mapped) == std::vector<std::string>{
                                   "[ ct load mark => reg 1 ]",
                                   "[ bitwise reg 1 = ( reg 1 & 0x00400000 ) ^ 0x00000000 ]",
                                   "[ cmp eq reg 1 0x00400000 ]",
                                   "[ meta load mark => reg 1 ]",
                                   "[ bitwise reg 1 = ( reg 1 & 0xffbfffff ) ^ 0x00400000 ]",
                                   "[ meta set mark with reg 1 ]",
                                   "[ counter pkts 0 bytes 0 ]",
                                   "[ queue num 0 ]",
                               });
  // The port rules do take the bypass flag.
  CHECK(expressions(rule_with(rules, "tcp dport")).back() == "[ queue num 0 bypass ]");
}

TEST_CASE("the mark chain sets the done bit with the same expressions the SYN rule clears it") {
  // nft: meta mark & $done_mark == $done_mark ct mark set ct mark | $done_mark
  RuleOptions o;
  const auto rules = sg::nft::mark_chain_rules(o);
  REQUIRE(rules.size() == 1);
  CHECK(rules[0].text == "meta mark & done_mark == done_mark ct mark set ct mark | done_mark");
  CHECK(expressions(rules[0]) == std::vector<std::string>{
                                     "[ meta load mark => reg 1 ]",
                                     "[ bitwise reg 1 = ( reg 1 & 0x00100000 ) ^ 0x00000000 ]",
                                     "[ cmp eq reg 1 0x00100000 ]",
                                     "[ ct load mark => reg 1 ]",
                                     "[ bitwise reg 1 = ( reg 1 & 0xffefffff ) ^ 0x00100000 ]",
                                     "[ ct set mark with reg 1 ]",
                                 });
}

TEST_CASE("disarming inserts a counted accept") {
  const ChainRule pass = sg::nft::pass_rule();
  CHECK(pass.text == "accept");
  CHECK(expressions(pass) ==
        std::vector<std::string>{"[ counter pkts 0 bytes 0 ]", "[ immediate reg 0 accept ]"});
}

TEST_CASE("the queues of queues = auto: one CPU is a plain queue num 0, more a balanced range") {
  // What the daemon hands the rules (main: rule_options from config::WorkerPlan): the kernel
  // balances a range by a symmetric hash of the addresses, never by CPU (no fanout flag).
  struct Case {
    size_t cpus;
    const char* text;
    const char* expression;
  };
  auto c = GENERATE(Case{1, "tcp dport 25 queue num 0 bypass", "[ queue num 0 bypass ]"},
                    Case{2, "tcp dport 25 queue num 0-1 bypass", "[ queue num 0-1 bypass ]"},
                    Case{96, "tcp dport 25 queue num 0-63 bypass", "[ queue num 0-63 bypass ]"});
  INFO(c.cpus << " CPUs");
  const sg::config::QueueRange q = sg::config::resolve_queues(sg::config::QueueSpec{}, c.cpus);
  RuleOptions o;
  o.queue_first = q.first;
  o.queue_last = q.last;
  o.bypass = true;
  const auto rules = sg::nft::queue_chain_rules(o, false);
  const ChainRule& dport = rule_with(rules, "tcp dport");
  CHECK(dport.text == c.text);
  CHECK(expressions(dport).back() == c.expression);
}
