#pragma once
// What the fuzz targets share: a reader over the fuzzer's bytes, the dialogue encoding that
// fuzz_session and fuzz_split read, the profiles the inspector targets run, and the check that
// ends a run with a message when an invariant does not hold.
//
// Dialogue encoding (tests/fuzz/README.md has every target's layout): a sequence of records,
//   'C' len16 bytes   client bytes (len16: two bytes, big-endian; cut short at the input's end)
//   'S' len16 bytes   server bytes
//   'F' dir           force_decide(dir): the hold timeout of a partial line
//   'A' dir u16       on_ack(dir, ...): the receiver acknowledges (see fuzz_session.cpp)
//   'T' u16           the clock advances by that many milliseconds (per-verb rate limits)
// Any other tag is data too, its direction the tag's low bit, so that no mutation of a tag
// wastes the bytes after it. `dir` is 'C', 'S', or any byte by its low bit.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/profile.hpp"
#include "smtp/session.hpp"
#include "util/time.hpp"

namespace sg::fuzz {

// Ends the run as a crash (libFuzzer saves the input) after saying which invariant failed.
[[noreturn]] inline void fail(const char* invariant, const std::string& detail) {
  std::fprintf(stderr, "\n*** fuzz invariant violated: %s\n%s\n", invariant, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// SG_FUZZ_STRICT=1 in the environment: product behaviour the targets tolerate by default
// because it is known and reported (tests/fuzz/README.md, "Known findings") fails instead.
inline bool strict() {
  static const bool on = [] {
    const char* v = std::getenv("SG_FUZZ_STRICT");
    return v && *v && *v != '0';
  }();
  return on;
}

// `detail` (a std::string expression) is only evaluated when `cond` is false.
#define SG_FUZZ_CHECK(cond, detail)                            \
  do {                                                         \
    if (!(cond)) ::sg::fuzz::fail(#cond, std::string(detail)); \
  } while (0)

// Bytes as readable text for failure messages: printable ASCII as is, the rest as \xNN.
inline std::string escaped(std::string_view s, size_t max = 400) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > max) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

inline std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view text_of(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// The fuzzer's bytes, read front to back; reads past the end give zeros and empty spans.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  size_t left() const { return size_ - pos_; }
  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t u16() {
    const uint16_t hi = u8();
    return static_cast<uint16_t>(hi << 8 | u8());
  }
  uint32_t u32() {
    const uint32_t hi = u16();
    return hi << 16 | u16();
  }
  std::span<const uint8_t> bytes(size_t n) {
    n = n < left() ? n : left();
    std::span<const uint8_t> s{data_ + pos_, n};
    pos_ += n;
    return s;
  }
  std::span<const uint8_t> rest() { return bytes(left()); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// A small deterministic generator for split points (xorshift32): the fuzzer picks the seed.
class SplitRng {
 public:
  explicit SplitRng(uint32_t seed) : state_(seed ? seed : 0x9e3779b9u) {}
  uint32_t next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 17;
    state_ ^= state_ << 5;
    return state_;
  }
  // 1..max
  size_t piece(size_t max) { return max <= 1 ? 1 : 1 + next() % max; }

 private:
  uint32_t state_;
};

enum class Op : uint8_t { kData, kForce, kAck, kTime };

struct Record {
  Op op = Op::kData;
  smtp::Dir dir = smtp::Dir::kClientToServer;
  std::span<const uint8_t> bytes;  // kData
  uint16_t value = 0;              // kAck, kTime
};

inline smtp::Dir dir_of(uint8_t b) {
  if (b == 'C') return smtp::Dir::kClientToServer;
  if (b == 'S') return smtp::Dir::kServerToClient;
  return (b & 1) ? smtp::Dir::kServerToClient : smtp::Dir::kClientToServer;
}

inline std::vector<Record> read_dialogue(Input& in) {
  std::vector<Record> out;
  while (!in.empty()) {
    const uint8_t tag = in.u8();
    Record r;
    switch (tag) {
      case 'F':
        r.op = Op::kForce;
        r.dir = dir_of(in.u8());
        break;
      case 'A':
        r.op = Op::kAck;
        r.dir = dir_of(in.u8());
        r.value = in.u16();
        break;
      case 'T':
        r.op = Op::kTime;
        r.value = in.u16();
        break;
      default:
        r.op = Op::kData;
        r.dir = dir_of(tag);
        r.bytes = in.bytes(in.u16());
        if (r.bytes.empty()) continue;
        break;
    }
    out.push_back(r);
  }
  return out;
}

// The profiles the inspector targets run: the four built-ins (0-3), then variants that switch
// on what the built-ins leave off, so that every action and check is reachable:
//   4 actions  modern + log, answer (own reply), reset, drop-connection, noop, a rate limit,
//              banner replace, AUTH/CHUNKING and unknown keywords stripped, smuggling
//              sanitized, early talkers reset
//   5 checks   modern + every parameter check with small limits and strong actions
//   6 strip    asa-default with every masked keyword stripped and answers for VRFY/EXPN,
//              pipelining out of order reset
//   7 answer   pix-legacy with every NOOP'd verb answered and the banner replaced
inline constexpr size_t kProfileCount = 8;
inline constexpr size_t kBuiltinCount = 4;

namespace detail {

inline policy::Profile builtin(std::string_view name) {
  const auto p = policy::builtin_profile(name);
  if (!p) fail("builtin_profile", std::string(name));
  return *p;
}

inline void set_verb(policy::Profile& p, smtp::Verb v, policy::CommandAction a) {
  p.verbs[static_cast<size_t>(v)] = a;
}
inline void set_keyword(policy::Profile& p, smtp::EhloKeyword k, policy::KeywordAction a) {
  p.keywords[static_cast<size_t>(k)] = a;
}

inline policy::Profile actions_variant() {
  using policy::CommandAction;
  using smtp::Verb;
  policy::Profile p = builtin("modern");
  p.name = "fuzz-actions";
  set_verb(p, Verb::kHelp, CommandAction::kLog);
  set_verb(p, Verb::kVrfy, CommandAction::kAnswer);
  p.verb_replies[static_cast<size_t>(Verb::kVrfy)] = "252 2.1.5 Send some mail";
  set_verb(p, Verb::kExpn, CommandAction::kReset);
  set_verb(p, Verb::kXlink2state, CommandAction::kDrop);
  set_verb(p, Verb::kNoop, CommandAction::kMask);
  p.verb_rates[static_cast<size_t>(Verb::kNoop)].per_second = 2;
  set_verb(p, Verb::kEtrn, CommandAction::kNoop);
  set_verb(p, Verb::kBdat, CommandAction::kAnswer);  // never answered: resets instead
  p.unknown_verb = CommandAction::kAnswer;
  p.banner = policy::BannerAction::kReplace;
  p.banner_text = "gateway.example ESMTP";
  set_keyword(p, smtp::EhloKeyword::kAuth, policy::KeywordAction::kStrip);
  set_keyword(p, smtp::EhloKeyword::kChunking, policy::KeywordAction::kStrip);
  p.unknown_keyword = policy::KeywordAction::kStrip;
  p.checks.smuggling = policy::CheckAction::kSanitize;
  p.checks.early_talker = policy::CheckAction::kReset;
  return p;
}

inline policy::Profile checks_variant() {
  using policy::CheckAction;
  policy::Profile p = builtin("modern");
  p.name = "fuzz-checks";
  policy::Checks& c = p.checks;
  c.command_line = {CheckAction::kMask, 64};
  c.reply_line = {CheckAction::kReset, 80};
  c.special_chars = CheckAction::kMask;
  c.sender_length = {CheckAction::kMask, 24};
  c.sender = {CheckAction::kReset, {"*@blocked.example", "spam?*"}};
  c.relay = {CheckAction::kMask, {"example.org", "*.example.org"}};
  c.recipients = {CheckAction::kReset, 3};
  c.invalid_recipients = {CheckAction::kDropConnection, 2};
  c.header_line = {CheckAction::kReset, 200};
  c.to_fields = {CheckAction::kLog, 2};
  c.body_line = {CheckAction::kLog, 120};
  c.message_size = {CheckAction::kReset, 600};
  c.mime_filename = {CheckAction::kDropConnection, 20};
  c.mime_filetype = {CheckAction::kReset, {"*.exe", "*.scr"}};
  c.mime_encoding = {CheckAction::kLog, {"uuencode", "x-*"}};
  c.smuggling = CheckAction::kDropConnection;
  c.starttls_injection = CheckAction::kDropConnection;
  return p;
}

inline policy::Profile strip_variant() {
  policy::Profile p = builtin("asa-default");
  p.name = "fuzz-strip";
  for (auto& k : p.keywords)
    if (k == policy::KeywordAction::kMask) k = policy::KeywordAction::kStrip;
  p.unknown_keyword = policy::KeywordAction::kStrip;
  set_verb(p, smtp::Verb::kVrfy, policy::CommandAction::kAnswer);
  set_verb(p, smtp::Verb::kExpn, policy::CommandAction::kAnswer);
  p.checks.pipelining = policy::CheckAction::kReset;
  return p;
}

inline policy::Profile answer_variant() {
  policy::Profile p = builtin("pix-legacy");
  p.name = "fuzz-answer";
  for (auto& v : p.verbs)
    if (v == policy::CommandAction::kNoop) v = policy::CommandAction::kAnswer;
  p.unknown_verb = policy::CommandAction::kAnswer;
  p.answer_reply = "502 5.5.1 Not here";
  p.banner = policy::BannerAction::kReplace;
  p.banner_text = "ready";
  return p;
}

}  // namespace detail

inline const policy::Profile& profile(size_t selector) {
  static const std::vector<std::shared_ptr<const policy::Profile>> all = [] {
    std::vector<std::shared_ptr<const policy::Profile>> v;
    for (std::string_view name : {"modern", "pix-mailguard", "pix-legacy", "asa-default"})
      v.push_back(std::make_shared<const policy::Profile>(detail::builtin(name)));
    v.push_back(std::make_shared<const policy::Profile>(detail::actions_variant()));
    v.push_back(std::make_shared<const policy::Profile>(detail::checks_variant()));
    v.push_back(std::make_shared<const policy::Profile>(detail::strip_variant()));
    v.push_back(std::make_shared<const policy::Profile>(detail::answer_variant()));
    return v;
  }();
  return *all[selector % kProfileCount];
}

inline std::shared_ptr<const policy::Profile> profile_ptr(size_t selector) {
  return std::make_shared<const policy::Profile>(profile(selector));
}

}  // namespace sg::fuzz
