#pragma once
// The decision log: one line per core::Decision, to syslog (facility LOG_MAIL) and/or stderr,
// rate-limited so that a flood of hostile commands cannot fill a disk. With a JSON event file
// attached (`event-json`, eventlog/event_json.hpp) every line that passes is written there too.
//
// Line format (key=value, one decision per line, keys always present and in this order):
//
//   event=command_masked id=1102 asa=108004 action=mask client=198.18.1.1:40000
//     server=198.18.2.1:25 dir=c2s subject="VRFY" detail=""
//
//   event    the event's name (policy/events.hpp), id its stable number, asa the Cisco ASA
//            syslog id of the same meaning or "-"
//   action   what the gateway did ("mask", "reset", "drop-connection", ...)
//   client/server  address:port ([v6]:port for IPv6); dir c2s or s2c: whose bytes
//   subject, detail  always quoted: printable ASCII stays, `"` and `\` are escaped with `\`, any
//            other byte is `\xNN`; values longer than their cap are cut and end in `...`
//
// When lines were suppressed by the rate limit, one summary line says how many, by event:
// `event=log_suppressed lines=37 command_masked=30 keyword_masked=7`. It precedes the next line
// that passes (at most one such summary a second), or comes from flush(). Under a sustained
// flood the log gets `rate` decision lines a second and one or two summaries.
//
// Under systemd the lines go to the journal with fields of their own (eventlog/journal.hpp),
// syslog being the fallback.
//
// Priorities: LOG_WARNING for decisions that end a connection (Decision::ends_connection, set by
// whoever decides: reset, drop-connection, the gateway's own resets), for overlap conflicts and
// for suppression summaries; LOG_NOTICE otherwise.
//
// Thread-safe: every worker calls log(). Nothing here throws or allocates per line; the time is
// passed in, so the rate limit is deterministic under test.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "control/stats_report.hpp"
#include "core/decision.hpp"
#include "eventlog/event_json.hpp"
#include "eventlog/fixed_text.hpp"
#include "eventlog/journal.hpp"
#include "policy/events.hpp"
#include "util/time.hpp"

namespace sg::eventlog {

class WatchHub;
using policy::kEventCount;
// Caps on the escaped fields, in input bytes.
inline constexpr size_t kMaxLoggedSubject = 64;
inline constexpr size_t kMaxLoggedDetail = 160;
// No line is longer than this (the caps above make a decision line at most ~1.1 KiB).
inline constexpr size_t kMaxLogLine = 1536;

// Decisions per event, counted whether or not their line was suppressed. Shared by all workers.
class EventCounters {
 public:
  void add(policy::Event e) noexcept {
    if (e < policy::Event::kCount)
      counts_[static_cast<size_t>(e)].fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t get(policy::Event e) const noexcept {
    return e < policy::Event::kCount
               ? counts_[static_cast<size_t>(e)].load(std::memory_order_relaxed)
               : 0;
  }

 private:
  std::array<std::atomic<uint64_t>, kEventCount> counts_{};
};

// A token bucket: `rate` tokens per second, at most `burst`, full at the first call. Not
// thread-safe (EventLog locks around it). rate 0: every take() succeeds.
class TokenBucket {
 public:
  TokenBucket(uint32_t rate, uint32_t burst);
  bool take(Timestamp now);

 private:
  static constexpr uint64_t kScale = 1'000'000'000;  // units per token: ns x tokens/s
  uint64_t rate_;
  uint64_t capacity_;  // burst x kScale
  uint64_t level_;
  Timestamp last_{};
  bool started_ = false;
};

struct EventLogOptions {
  bool syslog = true;         // openlog("smtpguardd", LOG_PID | LOG_NDELAY, LOG_MAIL)
  bool stderr_lines = false;  // also "smtpguardd: <line>" on stderr (foreground)
  uint32_t rate = 100;        // lines per second, all workers together; 0: no limit
  uint32_t burst = 0;         // lines allowed at once; 0: the same as rate
};

// Where finished lines go instead of syslog/stderr (tests). `priority` is LOG_NOTICE or
// LOG_WARNING; the line has no prefix and no newline.
using LogSink = std::function<void(int priority, std::string_view line)>;

// A fixed-size line being built: appends past kMaxLogLine are cut, never allocated.
class LogLine : public FixedText<kMaxLogLine> {
 public:
  // `"` + the escaped value + `"`, at most `cap` input bytes (then `...` before the quote).
  void append_quoted(std::string_view value, size_t cap) noexcept;
  void append_endpoint(const net::IpAddress& a, uint16_t port) noexcept;
};

// The line of one decision (pure).
void format_decision(const core::Decision& d, LogLine& out) noexcept;
std::string format_decision(const core::Decision& d);
// LOG_WARNING or LOG_NOTICE (see the top of this file).
int decision_priority(const core::Decision& d) noexcept;
// `event=log_suppressed lines=N name=n ...`: N lines in all, then the non-zero counts by event in
// the event table's order.
void format_suppressed(uint64_t lines, std::span<const uint64_t, kEventCount> by_event,
                       LogLine& out) noexcept;

class EventLog {
 public:
  // Writes to syslog and/or stderr as the options say.
  explicit EventLog(EventLogOptions options);
  // Writes only to `sink` (the syslog and stderr options are ignored).
  EventLog(EventLogOptions options, LogSink sink);
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Counts the decision and logs its line unless the rate limit says no.
  void log(const core::Decision& d, Timestamp now) noexcept;
  // Emits the summary of the lines suppressed and not yet summarised, if any (it takes no
  // token). Call it about once a second and at exit, so that a flood that stops still gets its
  // summary.
  void flush(Timestamp now) noexcept;

  // Every line from now on also as JSON (eventlog/event_json.hpp). Before the workers start.
  void attach_json(std::unique_ptr<JsonEventFile> file) { json_ = std::move(file); }
  // The JSON file opened again (SIGHUP, after logrotate); true without one.
  Expected<bool, std::string> reopen_json();
  const JsonEventFile* json() const { return json_.get(); }
  // Every line from now on as a native journal entry (eventlog/journal.hpp) in place of the
  // syslog line, which stays the fallback. Before the workers start.
  void attach_journal(std::unique_ptr<JournalSocket> socket) { journal_ = std::move(socket); }
  bool journal() const { return journal_ != nullptr; }
  // Every decision (suppressed or not) also to the watchers of `hub` (eventlog/watch_hub.hpp),
  // which outlives this log's use. Before the workers start.
  void attach_watch(WatchHub* hub) { watch_ = hub; }

  const EventCounters& events() const { return events_; }
  uint64_t lines() const { return lines_.load(std::memory_order_relaxed); }  // emitted
  uint64_t suppressed() const { return suppressed_.load(std::memory_order_relaxed); }
  // Entries journald did not take, written to syslog instead.
  uint64_t journal_fallbacks() const { return journal_fallbacks_.load(std::memory_order_relaxed); }

 private:
  // The line to the journal (with the decision's fields, or as a summary without `d`), else to
  // syslog; and to stderr.
  void emit(int priority, std::string_view line, const core::Decision* d) noexcept;
  // The summary line (and its JSON line) of `lines` suppressed lines.
  void emit_suppressed(uint64_t lines, const std::array<uint64_t, kEventCount>& by_event) noexcept;
  // Takes the pending suppression counts (under the lock); returns how many lines they were.
  uint64_t take_pending(std::array<uint64_t, kEventCount>& out);

  EventLogOptions options_;
  LogSink sink_;
  std::unique_ptr<JsonEventFile> json_;
  std::unique_ptr<JournalSocket> journal_;
  WatchHub* watch_ = nullptr;
  bool syslog_open_ = false;
  EventCounters events_;
  std::atomic<uint64_t> lines_{0};
  std::atomic<uint64_t> suppressed_{0};
  std::atomic<uint64_t> journal_fallbacks_{0};

  std::mutex mutex_;  // guards the bucket and the pending counts
  TokenBucket bucket_;
  std::array<uint64_t, kEventCount> pending_{};
  uint64_t pending_lines_ = 0;
  bool summarised_ = false;  // last_summary_ is set
  Timestamp last_summary_{};
};

// The log's counts into a statistics snapshot (decisions per event, lines, suppressed lines).
void capture_events(const EventLog& log, control::StatsSnapshot& snapshot);

}  // namespace sg::eventlog
