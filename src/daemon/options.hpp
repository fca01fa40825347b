#pragma once
// smtpguardd's command line. Parsing is pure (no printing, no exit) so it is unit-tested; main
// prints the text and exits with the code.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nft/rules.hpp"
#include "policy/profile.hpp"
#include "smtp/vocabulary.hpp"
#include "util/expected.hpp"

namespace sg::daemon {

// Bit 20 of the packet / connection mark. One bit, so that the daemon composes with other users
// of the mark (tests are "mark & bit == bit", sets are "mark | bit"); and not one of the low
// bits that policy routing, tc and most hand-written rulesets pick first, nor the 0x4000/0x8000
// bits kube-proxy uses.
inline constexpr uint32_t kDefaultDoneMark = 0x00100000;
// Bit 21: the SO_MARK of the packets the daemon sends itself (answers, resets). The queue chains
// accept packets carrying it first, so that with --hooks output they are not queued back to the
// daemon. Any non-zero mark that shares no bit with the done mark works.
inline constexpr uint32_t kDefaultInjectMark = 0x00200000;
// The longest --answer-reply: a reply line is at most 512 octets including CRLF (RFC 5321
// 4.5.3.1.5).
inline constexpr size_t kMaxAnswerReply = 510;
// One worker thread per queue; more than this is a typo, not a deployment.
inline constexpr size_t kMaxQueues = 64;

struct QueueRange {
  uint16_t first = 0;
  uint16_t last = 0;
  size_t count() const { return static_cast<size_t>(last) - first + 1; }
};

// Changes to the selected built-in profile from the command line. Every verb and keyword is named
// at most once across the lists.
struct PolicyOverrides {
  std::vector<smtp::EhloKeyword> strip_keywords;  // --strip-keyword: KeywordAction::kStrip
  std::vector<smtp::Verb> answer_verbs;           // --answer-verb: CommandAction::kAnswer
  std::vector<smtp::Verb> reset_verbs;            // --reset-verb: CommandAction::kReset
  std::optional<std::string> answer_reply;        // --answer-reply, without CRLF

  bool empty() const {
    return strip_keywords.empty() && answer_verbs.empty() && reset_verbs.empty() && !answer_reply;
  }
};

struct Options {
  QueueRange queues;
  std::string profile = "modern";
  bool install_rules = false;
  std::vector<nft::Hook> hooks{nft::Hook::kForward};
  uint16_t port = 25;
  bool fail_open = false;
  uint32_t queue_maxlen = 4096;
  size_t max_flows = 65536;
  uint32_t hold_timeout_ms = 2000;
  uint32_t done_mark = kDefaultDoneMark;
  uint32_t inject_mark = kDefaultInjectMark;
  PolicyOverrides overrides;
  uint32_t stats_interval_s = 0;  // 0 = no periodic statistics
  // Make the conntrack entry of each connection the daemon starts mapping liberal (TCP window
  // checks off), so that `ct state invalid` rules do not drop its rewritten stream.
  bool conntrack_tuning = true;
  bool verbose = false;
};

// "N" or "A-B" (A <= B), at most kMaxQueues queues.
Expected<QueueRange, std::string> parse_queue_range(std::string_view text);
// Comma-separated subset of forward,input,output; no repeats.
Expected<std::vector<nft::Hook>, std::string> parse_hooks(std::string_view text);
// Hexadecimal (with or without 0x) or decimal; exactly one bit set.
Expected<uint32_t, std::string> parse_done_mark(std::string_view text);
// Hexadecimal (with or without 0x) or decimal; any non-zero 32-bit value. The check against the
// done mark needs both options and is made by parse_command_line.
Expected<uint32_t, std::string> parse_inject_mark(std::string_view text);
// Comma-separated, case-insensitive names from the vocabulary tables; no empty item.
Expected<std::vector<smtp::EhloKeyword>, std::string> parse_keyword_list(std::string_view text);
Expected<std::vector<smtp::Verb>, std::string> parse_verb_list(std::string_view text);
// "4xy text" or "5xy text": three digits, the first 4 or 5, a space, printable ASCII; at most
// kMaxAnswerReply characters.
Expected<std::string, std::string> parse_answer_reply(std::string_view text);
// Decimal in [min, max].
Expected<uint64_t, std::string> parse_number(std::string_view text, uint64_t min, uint64_t max);

// The outcome of the command line: either options to run with, or an exit code with the text
// to print (help and version on stdout with 0, errors on stderr with 2).
struct CommandLine {
  std::optional<Options> options;
  int exit_code = 0;
  std::string text;
};

CommandLine parse_command_line(int argc, const char* const argv[]);

// The profile with the overrides applied.
policy::Profile apply_overrides(policy::Profile profile, const PolicyOverrides& overrides);
// The overrides as command-line options, e.g. "--strip-keyword AUTH,CHUNKING --answer-verb VRFY";
// empty when there are none.
std::string describe_overrides(const PolicyOverrides& overrides);

std::string version_text();

}  // namespace sg::daemon
