#pragma once
// The decision log as native journal entries, for a daemon started by systemd: the same lines
// (eventlog/event_log.hpp), each sent to journald's socket with fields a query can select on
// instead of parsing MESSAGE:
//
//   MESSAGE=event=command_masked id=1102 asa=108004 action=mask client=... (the key=value line)
//   MESSAGE_ID=8d4c1f3a9e2b47d6b5a0000000001102   one per event type (below)
//   PRIORITY=5, SYSLOG_FACILITY=2 (mail), SYSLOG_IDENTIFIER=smtpguardd
//   SMTPGUARD_EVENT=command_masked  SMTPGUARD_EVENT_ID=1102  SMTPGUARD_ASA_ID=108004 (if any)
//   SMTPGUARD_ACTION=mask  SMTPGUARD_DIR=c2s  SMTPGUARD_ENDS_CONNECTION=0|1
//   SMTPGUARD_CLIENT=198.18.1.1:40000  SMTPGUARD_SERVER=198.18.2.1:25
//   SMTPGUARD_FLOW_ID=...  (the event-json flow_id: the same number for one connection)
//   SMTPGUARD_SUBJECT, SMTPGUARD_DETAIL, SMTPGUARD_HELO, SMTPGUARD_MAIL_FROM: escaped as in the
//     key=value line (printable ASCII stays, `"` and `\` get a `\`, other bytes are \xNN; cut at
//     the same caps, then `...`), so no value holds a newline
//   SMTPGUARD_RCPT_COUNT=1
//
// MESSAGE_ID: the fixed 20 hex digits kMessageIdPrefix, then the event's stable id in 12
// decimal digits (decimal digits are hex digits), so `journalctl MESSAGE_ID=...1102` selects one
// event type and the id is readable at the end. A rate-limit summary gets the id 0
// (...000000000000) and SMTPGUARD_EVENT=log_suppressed.
//
// When: the daemon's stderr is the journal stream systemd gave it (JOURNAL_STREAM names its
// device and inode, systemd.exec(5)) and syslog is on. An entry journald does not take (its
// socket full: the socket is non-blocking, a worker never waits on it) goes to syslog instead
// and is counted (log_journal_fallbacks): nothing is lost, nothing slows a worker more than the
// syslog line it replaces.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/decision.hpp"
#include "eventlog/fixed_text.hpp"
#include "util/expected.hpp"

namespace sg::eventlog {

inline constexpr std::string_view kJournalSocket = "/run/systemd/journal/socket";
inline constexpr std::string_view kMessageIdPrefix = "8d4c1f3a9e2b47d6b5a0";
// No entry is longer than this: the key=value line (at most kMaxLogLine) plus the fields above,
// each capped like the line's.
inline constexpr size_t kMaxJournalEntry = 6144;

// A native journal datagram being built: NAME=value lines.
class JournalEntry : public FixedText<kMaxJournalEntry> {
 public:
  void field(std::string_view name, std::string_view value) noexcept;
  void field(std::string_view name, uint64_t value) noexcept;
  // The value escaped as the key=value line escapes it, at most `cap` input bytes.
  void escaped_field(std::string_view name, std::string_view value, size_t cap) noexcept;
};

// The 32 hex digits of an event's MESSAGE_ID; id 0 for the rate-limit summary.
std::string message_id(uint32_t event_id);

// The entry of one decision whose key=value line is `line` (pure).
void format_journal_decision(const core::Decision& d, std::string_view line, int priority,
                             JournalEntry& out) noexcept;
// The entry of a rate-limit summary line (pure).
void format_journal_suppressed(std::string_view line, int priority, JournalEntry& out) noexcept;

// JOURNAL_STREAM (the value of the variable, "DEV:INODE") names the file open on stderr.
bool journal_stream_is_stderr(const char* journal_stream) noexcept;

// A non-blocking datagram socket connected to journald.
class JournalSocket {
 public:
  static Expected<std::unique_ptr<JournalSocket>, std::string> open(
      std::string_view path = kJournalSocket);
  ~JournalSocket();
  JournalSocket(const JournalSocket&) = delete;
  JournalSocket& operator=(const JournalSocket&) = delete;
  // One datagram; false when journald did not take it (full, gone, too large).
  bool send(std::string_view entry) noexcept;

 private:
  explicit JournalSocket(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace sg::eventlog
