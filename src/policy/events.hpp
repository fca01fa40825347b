#pragma once
// Every decision the gateway logs, declared once: a stable numeric id operators can grep and
// alert on, a name, the ASA syslog id whose meaning matches (0: none), and what it means.
// Ids never change meaning; new events get new ids.
#include <array>
#include <cstdint>
#include <string_view>

#include "policy/exceptions.hpp"

namespace sg::policy {

// X(enum name, id, asa id, "name", "meaning")
#define SG_EVENTS(X)                                                                         \
  X(kBannerMasked, 1001, 0, "banner_masked", "server greeting masked with asterisks")        \
  X(kBannerReplaced, 1002, 0, "banner_replaced",                                             \
    "server greeting replaced by the configured "                                            \
    "text")                                                                                  \
  X(kCommandLogged, 1101, 108005, "command_logged", "command matched a log rule; forwarded") \
  X(kCommandMasked, 1102, 108004, "command_masked", "command X'd; the server refuses it")    \
  X(kCommandNoop, 1103, 108004, "command_noop", "command turned into NOOP (PIX 4.x)")        \
  X(kCommandAnswered, 1104, 108004, "command_answered",                                      \
    "command removed; the gateway "                                                          \
    "answered it")                                                                           \
  X(kCommandReset, 1105, 108004, "command_reset", "command reset the connection")            \
  X(kCommandDropped, 1106, 108004, "command_dropped", "command dropped the connection")      \
  X(kKeywordMasked, 1201, 108004, "keyword_masked", "EHLO keyword masked (XXXXXXXA)")        \
  X(kKeywordStripped, 1202, 108004, "keyword_stripped", "EHLO keyword line removed")         \
  X(kCommandLineLength, 1301, 108004, "command_line_length", "command line over the limit")  \
  X(kReplyLineLength, 1302, 108004, "reply_line_length", "reply line over the limit")        \
  X(kSpecialChars, 1303, 108003, "special_chars", "| ` NUL or control byte in an address")   \
  X(kSenderLength, 1304, 108004, "sender_length", "sender address over the limit")           \
  X(kSenderPattern, 1305, 108004, "sender_pattern", "sender address matched a pattern")      \
  X(kMailRelay, 1306, 108004, "mail_relay", "recipient domain outside the protected ones")   \
  X(kRecipients, 1307, 108004, "recipients", "too many recipients in one transaction")       \
  X(kInvalidRecipients, 1308, 108004, "invalid_recipients",                                  \
    "too many refused recipients in "                                                        \
    "one session")                                                                           \
  X(kHeaderLineLength, 1309, 108004, "header_line_length", "header line over the limit")     \
  X(kToFields, 1310, 108004, "to_fields", "too many To: header fields")                      \
  X(kBodyLineLength, 1311, 108004, "body_line_length", "body line over the limit")           \
  X(kMessageSize, 1312, 108006, "message_size",                                              \
    "message larger than the limit or than its "                                             \
    "declared SIZE")                                                                         \
  X(kMimeFilename, 1313, 108004, "mime_filename", "attachment file name over the limit")     \
  X(kMimeFiletype, 1314, 108004, "mime_filetype", "attachment file name matched a pattern")  \
  X(kMimeEncoding, 1315, 108004, "mime_encoding", "transfer encoding matched a pattern")     \
  X(kSmuggling, 1601, 0, "smtp_smuggling",                                                   \
    "bare CR or LF, NUL, or a non-canonical end of data in a message")                       \
  X(kStarttlsInjection, 1402, 0, "starttls_injection",                                       \
    "plaintext around the STARTTLS handshake (CVE-2011-0411 class)")                         \
  X(kStarttls, 1401, 108007, "starttls", "TLS started: inspection of the connection stops")  \
  X(kLineNeutralised, 1501, 0, "line_neutralised",                                           \
    "a partial line not decided in time, or a command line over the cap: "                   \
    "masked")                                                                                \
  X(kOverlapConflict, 1502, 0, "overlap_conflict",                                           \
    "retransmitted bytes differ from the "                                                   \
    "inspected ones: dropped")                                                               \
  X(kFlowReset, 1503, 0, "flow_reset", "the gateway reset the connection")                   \
  X(kUrgentCleared, 1504, 0, "urgent_cleared",                                               \
    "TCP urgent pointer cleared: the receiver reads the urgent byte in the stream")          \
  X(kMemoryBudget, 1505, 0, "memory_budget",                                                 \
    "the worker's byte budget was full: new data dropped or retained bytes let go")          \
  X(kEarlyTalker, 1701, 0, "early_talker", "client sent before the server's greeting ended") \
  X(kPipelining, 1702, 0, "pipelining", "client sent before a reply it had to wait for")     \
  /* exceptions (policy/exceptions.hpp; ids checked against it there) */                     \
  X(kExceptionMidstream, 1801, 0, "exception_midstream",                                     \
    "packet of a connection whose handshake was not seen")                                   \
  X(kExceptionMemoryBudget, 1802, 0, "exception_memory_budget",                              \
    "byte budget full: the exception policy applied")                                        \
  X(kExceptionPendingBuffer, 1803, 0, "exception_pending_buffer",                            \
    "bytes waiting for a reply or line end over the per-connection cap")                     \
  X(kExceptionHoldLimit, 1804, 0, "exception_hold_limit",                                    \
    "segment beyond a hole could not be held")                                               \
  X(kExceptionTruncated, 1805, 0, "exception_truncated",                                     \
    "packet handed over truncated by the kernel")                                            \
  X(kExceptionPendingOverflow, 1806, 0, "exception_pending_overflow",                        \
    "more pipelined commands than the gateway tracks")                                       \
  X(kExceptionUnclassifiable, 1807, 0, "exception_unclassifiable",                           \
    "a line or message end that servers may read differently")                               \
  X(kExceptionUnplaceable, 1808, 0, "exception_unplaceable",                                 \
    "a sequence number that cannot be placed in the stream")

enum class Event : uint16_t {
#define SG_X(name, id, asa, text, meaning) name,
  SG_EVENTS(SG_X)
#undef SG_X
      kCount
};

struct EventInfo {
  uint32_t id;
  uint32_t asa_id;  // 0: no ASA message has this meaning
  std::string_view name;
  std::string_view meaning;
};

inline constexpr size_t kEventCount = static_cast<size_t>(Event::kCount);

inline constexpr std::array<EventInfo, static_cast<size_t>(Event::kCount)> kEventInfo{{
#define SG_X(name, id, asa, text, meaning) {id, asa, text, meaning},
    SG_EVENTS(SG_X)
#undef SG_X
}};

inline const EventInfo& info(Event e) {
  return kEventInfo[static_cast<size_t>(e)];
}

// The event logged for exception `e` (policy/exceptions.hpp): the events above follow the
// exceptions' order from kExceptionMidstream on, with the same ids.
inline constexpr Event exception_event(Exception e) {
  return static_cast<Event>(static_cast<size_t>(Event::kExceptionMidstream) +
                            static_cast<size_t>(e));
}
static_assert(
    [] {
      for (size_t i = 0; i < kExceptionCount; ++i)
        if (kEventInfo[static_cast<size_t>(exception_event(static_cast<Exception>(i)))].id !=
            kExceptionInfo[i].event_id)
          return false;
      return static_cast<size_t>(Event::kExceptionMidstream) + kExceptionCount ==
             static_cast<size_t>(Event::kCount);
    }(),
    "exception events follow SG_EXCEPTIONS in order, with its ids");

}  // namespace sg::policy
