#pragma once
// Exceptions: the states in which the gateway would lose sight of a connection's stream, and
// what it does then (DESIGN.md section 7, "fail closed"). Declared once: the configuration
// keys, counters, event ids and the table of docs/profiles.md all come from this list.
//
// A byte of an inspected connection reaches the other end only as inspected. When the gateway
// cannot guarantee that (no handshake seen, a limit reached, a line it cannot classify, a
// sequence number it cannot place), the exception's policy decides:
//   reject       RST to both ends, each numbered so that its end accepts it (the default:
//                SMTP clients retry, nothing is lost)
//   drop-flow    every later packet of the connection dropped silently
//   drop-packet  only this packet dropped (the sender retransmits it); where no packet can be
//                singled out (a line inside the stream) the configuration refuses it
//   pass         the connection is no longer inspected: its bytes pass as they come (sequence
//                numbers still mapped where a length changed). The explicit fail-open choice,
//                warned about at start.
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sg::policy {

enum class ExceptionAction : uint8_t { kReject, kDropFlow, kDropPacket, kPass };

// X(enum name, "config name", event id, default action, packet-level, "meaning")
// packet-level: raised for one packet before its bytes are inspected, so drop-packet is
// meaningful (the others arise inside the byte stream).
#define SG_EXCEPTIONS(X)                                                                        \
  X(kMidstream, "midstream", 1801, kReject, true,                                               \
    "packet of a connection whose handshake the gateway did not see (restart, expired or "      \
    "evicted flow)")                                                                            \
  X(kMemoryBudget, "memory-budget", 1802, kReject, true,                                        \
    "the worker's byte budget is full and no other connection can give memory back")            \
  X(kPendingBuffer, "pending-buffer", 1803, kReject, false,                                      \
    "bytes waiting for a reply or a line end exceed the per-connection cap")                    \
  X(kHoldLimit, "hold-limit", 1804, kDropPacket, true,                                          \
    "a segment beyond a hole cannot be held (per-connection hold limits): it is not forwarded") \
  X(kTruncated, "truncated", 1805, kReject, true,                                               \
    "the kernel handed over only part of the packet (over the copy range)")                     \
  X(kPendingOverflow, "pending-overflow", 1806, kReject, false,                                 \
    "more pipelined commands await replies than the gateway tracks")                            \
  X(kUnclassifiable, "unclassifiable", 1807, kReject, false,                                    \
    "a line or message end the gateway cannot read the way every server would")                 \
  X(kUnplaceable, "unplaceable", 1808, kReject, true,                                           \
    "a sequence number outside what can be placed in the stream (before its start)")

enum class Exception : uint8_t {
#define SG_X(name, key, id, action, packet, meaning) name,
  SG_EXCEPTIONS(SG_X)
#undef SG_X
      kCount
};
inline constexpr size_t kExceptionCount = static_cast<size_t>(Exception::kCount);

struct ExceptionInfo {
  std::string_view key;  // configuration name: exception-policy-<key>
  uint32_t event_id;
  ExceptionAction default_action;
  bool packet_level;  // drop-packet allowed
  std::string_view meaning;
};

inline constexpr std::array<ExceptionInfo, kExceptionCount> kExceptionInfo{{
#define SG_X(name, key, id, action, packet, meaning) \
  {key, id, ExceptionAction::action, packet, meaning},
    SG_EXCEPTIONS(SG_X)
#undef SG_X
}};

inline const ExceptionInfo& info(Exception e) {
  return kExceptionInfo[static_cast<size_t>(e)];
}

inline constexpr std::string_view to_string(ExceptionAction a) {
  switch (a) {
    case ExceptionAction::kReject:
      return "reject";
    case ExceptionAction::kDropFlow:
      return "drop-flow";
    case ExceptionAction::kDropPacket:
      return "drop-packet";
    case ExceptionAction::kPass:
      return "pass";
  }
  return "?";
}

inline std::optional<ExceptionAction> parse_exception_action(std::string_view text) {
  for (ExceptionAction a : {ExceptionAction::kReject, ExceptionAction::kDropFlow,
                            ExceptionAction::kDropPacket, ExceptionAction::kPass})
    if (text == to_string(a)) return a;
  return std::nullopt;
}

// The action of every exception: the defaults above, changed by configuration.
class ExceptionPolicy {
 public:
  ExceptionPolicy() {
    for (size_t i = 0; i < kExceptionCount; ++i) actions_[i] = kExceptionInfo[i].default_action;
  }
  ExceptionAction of(Exception e) const { return actions_[static_cast<size_t>(e)]; }
  void set(Exception e, ExceptionAction a) { actions_[static_cast<size_t>(e)] = a; }
  bool operator==(const ExceptionPolicy&) const = default;

 private:
  std::array<ExceptionAction, kExceptionCount> actions_{};
};

}  // namespace sg::policy
