#include "eventlog/event_log.hpp"
#include "eventlog/watch_hub.hpp"
#include "util/ascii.hpp"

#include <arpa/inet.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>

namespace sg::eventlog {
namespace {

constexpr std::string_view kIdent = "smtpguardd";
constexpr Duration kSummaryInterval = seconds(1);
// openlog keeps the pointer: it must outlive every syslog() call.
constexpr const char* kIdentC = "smtpguardd";

// A warning: the gateway ended the connection (its decider says so, from the action's enum), or
// a peer sent other bytes for sequence numbers already inspected - an evasion attempt or a
// broken stack, worth an operator's eye although only the packet was dropped.
bool warns(const core::Decision& d) {
  return d.ends_connection || d.event == policy::Event::kOverlapConflict;
}

// Whole writes, retried on EINTR and short writes; stderr errors are ignored (nowhere to say so).
void write_all(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

// --- TokenBucket ---

TokenBucket::TokenBucket(uint32_t rate, uint32_t burst)
    : rate_(rate),
      capacity_(static_cast<uint64_t>(burst == 0 ? rate : burst) * kScale),
      level_(capacity_) {}

bool TokenBucket::take(Timestamp now) {
  if (rate_ == 0) return true;
  if (!started_) {
    started_ = true;
    last_ = now;
  } else if (now > last_) {
    // Workers pass their own readings of the clock: an earlier one than the last adds nothing.
    const uint64_t elapsed = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_).count());
    last_ = now;
    const uint64_t room = capacity_ - level_;
    // elapsed * rate may overflow after a long quiet spell: compare by division first.
    level_ =
        elapsed >= room / rate_ + 1 ? capacity_ : std::min(capacity_, level_ + elapsed * rate_);
  }
  if (level_ < kScale) return false;
  level_ -= kScale;
  return true;
}

// --- LogLine ---

void LogLine::append_quoted(std::string_view value, size_t cap) noexcept {
  append("\"");
  append_escaped(value, cap);
  append("\"");
}

void LogLine::append_endpoint(const net::IpAddress& a, uint16_t port) noexcept {
  if (a.is_v4()) {
    append(a.text().view());
  } else {
    append("[");
    append(a.text().view());
    append("]");
  }
  append(":");
  append(static_cast<uint64_t>(port));
}

// --- formatting ---

void format_decision(const core::Decision& d, LogLine& out) noexcept {
  const bool known = d.event < policy::Event::kCount;
  const policy::EventInfo* info = known ? &policy::info(d.event) : nullptr;
  out.append("event=");
  out.append(known ? info->name : std::string_view("unknown"));
  out.append(" id=");
  out.append(static_cast<uint64_t>(known ? info->id : 0));
  out.append(" asa=");
  if (known && info->asa_id != 0) {
    out.append(static_cast<uint64_t>(info->asa_id));
  } else {
    out.append("-");
  }
  out.append(" action=");
  out.append(d.action.empty() ? std::string_view("-") : d.action);
  out.append(" client=");
  out.append_endpoint(d.client, d.client_port);
  out.append(" server=");
  out.append_endpoint(d.server, d.server_port);
  out.append(d.dir == smtp::Dir::kClientToServer ? " dir=c2s" : " dir=s2c");
  out.append(" subject=");
  out.append_quoted(d.subject, kMaxLoggedSubject);
  out.append(" detail=");
  out.append_quoted(d.detail, kMaxLoggedDetail);
}

std::string format_decision(const core::Decision& d) {
  LogLine line;
  format_decision(d, line);
  return std::string(line.view());
}

int decision_priority(const core::Decision& d) noexcept {
  return warns(d) ? LOG_WARNING : LOG_NOTICE;
}

void format_suppressed(uint64_t lines, std::span<const uint64_t, kEventCount> by_event,
                       LogLine& out) noexcept {
  out.append("event=log_suppressed lines=");
  out.append(lines);
  for (size_t i = 0; i < kEventCount; ++i) {
    if (by_event[i] == 0) continue;
    out.append(" ");
    out.append(policy::kEventInfo[i].name);
    out.append("=");
    out.append(by_event[i]);
  }
}

// --- EventLog ---

EventLog::EventLog(EventLogOptions options)
    : options_(options), bucket_(options.rate, options.burst) {
  if (options_.syslog) {
    openlog(kIdentC, LOG_PID | LOG_NDELAY, LOG_MAIL);
    syslog_open_ = true;
  }
}

EventLog::EventLog(EventLogOptions options, LogSink sink)
    : options_(options), sink_(std::move(sink)), bucket_(options.rate, options.burst) {}

EventLog::~EventLog() {
  if (syslog_open_) closelog();
}

void EventLog::emit(int priority, std::string_view line, const core::Decision* d) noexcept {
  lines_.fetch_add(1, std::memory_order_relaxed);
  if (sink_) {
    sink_(priority, line);
    return;
  }
  bool journaled = false;
  if (journal_) {
    JournalEntry entry;
    if (d != nullptr) {
      format_journal_decision(*d, line, priority, entry);
    } else {
      format_journal_suppressed(line, priority, entry);
    }
    journaled = journal_->send(entry.view());
    if (!journaled) journal_fallbacks_.fetch_add(1, std::memory_order_relaxed);
  }
  if (!journaled && syslog_open_)
    syslog(priority, "%.*s", static_cast<int>(line.size()), line.data());
  if (options_.stderr_lines) {
    // One write per line, so that lines of several workers never interleave.
    std::array<char, kMaxLogLine + 16> buf;
    size_t n = 0;
    auto put = [&](std::string_view s) {
      const size_t k = std::min(s.size(), buf.size() - n);
      std::copy_n(s.data(), k, buf.data() + n);
      n += k;
    };
    put(kIdent);
    put(": ");
    put(line);
    put("\n");
    write_all(STDERR_FILENO, std::string_view(buf.data(), n));
  }
}

uint64_t EventLog::take_pending(std::array<uint64_t, kEventCount>& out) {
  const uint64_t lines = pending_lines_;
  if (lines == 0) return 0;
  out = pending_;
  pending_.fill(0);
  pending_lines_ = 0;
  return lines;
}

void EventLog::log(const core::Decision& d, Timestamp now) noexcept {
  events_.add(d.event);
  if (watch_) watch_->publish(d);  // not rate-limited: a watcher's queue bounds it
  std::array<uint64_t, kEventCount> summary{};
  uint64_t summary_lines = 0;
  {
    std::lock_guard lock(mutex_);
    if (!bucket_.take(now)) {
      if (d.event < policy::Event::kCount) ++pending_[static_cast<size_t>(d.event)];
      ++pending_lines_;
      suppressed_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // At most one summary a second from here: under a sustained flood a line that passes would
    // otherwise bring a summary with it every time.
    if (pending_lines_ != 0 && (!summarised_ || now - last_summary_ >= kSummaryInterval)) {
      summary_lines = take_pending(summary);
      summarised_ = true;
      last_summary_ = now;
    }
  }
  // Formatting and writing happen outside the lock: a slow syslog never serialises the workers
  // behind this mutex (a summary may then land just after another worker's line).
  if (summary_lines != 0) emit_suppressed(summary_lines, summary);
  LogLine line;
  format_decision(d, line);
  emit(decision_priority(d), line.view(), &d);
  if (json_) {
    JsonLine j;
    format_json_decision(d, WallClock::now(), j);
    json_->write(j.view());
  }
}

void EventLog::emit_suppressed(uint64_t lines,
                               const std::array<uint64_t, kEventCount>& by_event) noexcept {
  LogLine s;
  format_suppressed(lines, by_event, s);
  emit(LOG_WARNING, s.view(), nullptr);
  if (json_) {
    JsonLine j;
    format_json_suppressed(lines, by_event, WallClock::now(), j);
    json_->write(j.view());
  }
}

Expected<bool, std::string> EventLog::reopen_json() {
  return json_ ? json_->reopen() : Expected<bool, std::string>(true);
}

void EventLog::flush(Timestamp now) noexcept {
  std::array<uint64_t, kEventCount> summary{};
  uint64_t summary_lines = 0;
  {
    std::lock_guard lock(mutex_);
    summary_lines = take_pending(summary);
    if (summary_lines != 0) {
      summarised_ = true;
      last_summary_ = now;
    }
  }
  if (summary_lines != 0) emit_suppressed(summary_lines, summary);
}

void capture_events(const EventLog& log, control::StatsSnapshot& snapshot) {
  for (size_t i = 0; i < kEventCount; ++i)
    snapshot.events[i] = log.events().get(static_cast<policy::Event>(i));
  snapshot.log_lines = log.lines();
  snapshot.log_suppressed = log.suppressed();
  snapshot.log_journal_fallbacks = log.journal_fallbacks();
}

}  // namespace sg::eventlog
