#pragma once
// The value syntaxes of smtpguardd's options, shared by the command line and the configuration
// file. Each parser takes the text as given and either returns the value or says what is wrong
// with it and what is allowed (BadValue); where it came from is the caller's to add.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_file.hpp"
#include "config/hook.hpp"
#include "smtp/vocabulary.hpp"
#include "util/expected.hpp"

namespace sg::config {

// Bit 20 of the packet / connection mark. One bit, so that the daemon composes with other users
// of the mark (tests are "mark & bit == bit", sets are "mark | bit"); and not one of the low
// bits that policy routing, tc and most hand-written rulesets pick first, nor the 0x4000/0x8000
// bits kube-proxy uses.
inline constexpr uint32_t kDefaultDoneMark = 0x00100000;
// Bit 21: the SO_MARK of the packets the daemon sends itself (answers, resets). The queue chains
// accept packets carrying it first, so that with --hooks output they are not queued back to the
// daemon. Any non-zero mark that shares no bit with the done mark works.
inline constexpr uint32_t kDefaultInjectMark = 0x00200000;
// Bit 22: set in the ct mark of connections whose sequence numbers the daemon maps. The rules
// queue them without bypass (a dead daemon drops their packets rather than pass them unmapped)
// and a restarted daemon resets them instead of picking them up mid-stream. 0 turns this off.
inline constexpr uint32_t kDefaultMappedMark = 0x00400000;
// The longest --answer-reply: a reply line is at most 512 octets including CRLF (RFC 5321
// 4.5.3.1.5).
inline constexpr size_t kMaxAnswerReply = 510;
// One worker thread per queue; more than this is a typo, not a deployment.
inline constexpr size_t kMaxQueues = 64;
// CPU numbers sched_setaffinity's cpu_set_t can name (CPU_SETSIZE).
inline constexpr size_t kMaxCpus = 1024;
// sun_path holds 108 bytes with the terminating NUL.
inline constexpr size_t kMaxSocketPath = 107;

struct QueueRange {
  uint16_t first = 0;
  uint16_t last = 0;
  size_t count() const { return static_cast<size_t>(last) - first + 1; }
  bool operator==(const QueueRange&) const = default;
};

// --queues as given: "auto" (one queue per CPU the daemon may run on, counted at start:
// config/worker_plan.hpp) or the queues named.
struct QueueSpec {
  bool automatic = true;
  QueueRange range;  // when not automatic
  bool operator==(const QueueSpec&) const = default;
};

// Decimal in [min, max].
Expected<uint64_t, BadValue> parse_number(std::string_view text, uint64_t min, uint64_t max);
// true/false, also yes/no, on/off, 1/0 (what Boost accepts for a switch).
Expected<bool, BadValue> parse_bool(std::string_view text);
// "N" or "A-B" (A <= B), at most kMaxQueues queues.
Expected<QueueRange, BadValue> parse_queue_range(std::string_view text);
// "auto", or what parse_queue_range takes.
Expected<QueueSpec, BadValue> parse_queues(std::string_view text);
// "0-3,6": comma-separated CPU numbers and ranges A-B (A <= B), each below kMaxCpus, in the
// order given; no CPU twice. The order is the workers' (worker i gets the i-th CPU).
Expected<std::vector<uint16_t>, BadValue> parse_cpu_list(std::string_view text);
// The list back as text, ranges joined: {0,1,2,3,6} -> "0-3,6".
std::string cpu_list_text(const std::vector<uint16_t>& cpus);
// Comma-separated subset of forward,input,output; no repeats.
Expected<std::vector<Hook>, BadValue> parse_hooks(std::string_view text);
// Hexadecimal (with or without 0x) or decimal; exactly one bit set.
Expected<uint32_t, BadValue> parse_done_mark(std::string_view text);
// Hexadecimal (with or without 0x) or decimal; any non-zero 32-bit value. The check against the
// done mark needs both options and is made where both are known.
Expected<uint32_t, BadValue> parse_inject_mark(std::string_view text);
// Hexadecimal (with or without 0x) or decimal; exactly one bit set, or 0 (off). The checks
// against the other marks are made where all are known.
Expected<uint32_t, BadValue> parse_mapped_mark(std::string_view text);
// Comma-separated, case-insensitive names from the vocabulary tables; no empty item.
Expected<std::vector<smtp::EhloKeyword>, BadValue> parse_keyword_list(std::string_view text);
Expected<std::vector<smtp::Verb>, BadValue> parse_verb_list(std::string_view text);
// "4xy text" or "5xy text": three digits, the first 4 or 5, a space, printable ASCII; at most
// kMaxAnswerReply characters.
Expected<std::string, BadValue> parse_answer_reply(std::string_view text);
// An absolute path without control characters, at most `max_len` bytes.
Expected<std::string, BadValue> parse_absolute_path(std::string_view text, size_t max_len);
// "A.B.C.D:PORT" or "[IPV6]:PORT": a numeric address that is not the wildcard (0.0.0.0, ::),
// a port 1-65535; the text as given. (The metrics server parses it into a socket address with
// the same rules, control/metrics_http.hpp.)
Expected<std::string, BadValue> check_listen_address(std::string_view text);

// The items of a comma-separated list with the blanks around each removed; an error ("got ...",
// `allowed`) when the list or an item is empty.
Expected<std::vector<std::string_view>, BadValue> split_list(std::string_view text,
                                                             std::string_view allowed);
std::string_view trim_blanks(std::string_view text);

// "HELO, EHLO, ..." and "STARTTLS, AUTH, ...": what a verb or keyword may be.
std::string verb_names();
std::string keyword_names();
std::string hex(uint32_t v);  // "0x100000"

}  // namespace sg::config
