#pragma once
// The decision log as JSON lines (`event-json = PATH`), for a SIEM that reads Suricata's eve.json:
// one object per line, the same decisions and the same rate limit as the key=value lines
// (eventlog/event_log.hpp), in this shape (docs/event.schema.json is the contract):
//
//   {"timestamp":"2026-12-07T20:15:01.123456Z","flow_id":1234567890123,"event_type":"smtpguard",
//    "src_ip":"198.18.1.1","src_port":40000,"dest_ip":"198.18.2.1","dest_port":25,
//    "proto":"TCP","smtp":{"helo":"client.example.org","mail_from":"a@example.org",
//    "rcpt_count":1},"smtpguard":{"event":"command_masked","id":1102,"asa":108004,
//    "action":"mask","dir":"c2s","ends_connection":false,"subject":"VRFY","detail":""}}
//
//   timestamp  wall clock, UTC, microseconds (RFC 3339)
//   flow_id    the same number for every decision of one connection (a hash of its 4-tuple,
//              below 2^52 so that JavaScript-based tools read it exactly)
//   src/dest   the client and the server, whichever side's bytes the decision concerns (dir)
//   smtp       what the server had been told when it was decided (core/session_context.hpp):
//              the HELO/EHLO name, the transaction's sender, its recipients so far ("", 0: none)
//   asa        the Cisco ASA syslog id of the same meaning, or null
//   subject, detail  the bytes as sent, each byte above 0x7e or below 0x20 as \u00XX (so the
//              line is ASCII and valid JSON whatever the peer sent), cut at the key=value caps
//              and then ending in "..."
// A rate-limit summary is {"timestamp":..., "event_type":"smtpguard_suppressed",
// "smtpguard_suppressed":{"lines":N,"by_event":{"command_masked":30,...}}}.
//
// Written with one write() per line on a file opened O_APPEND (several workers never
// interleave); reopen() after logrotate moved the file (SIGHUP). "-" is standard output.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "core/decision.hpp"
#include "eventlog/fixed_text.hpp"
#include "policy/events.hpp"
#include "util/expected.hpp"

namespace sg::eventlog {

using WallClock = std::chrono::system_clock;

// No JSON line is longer than this (the caps of the subject and the detail keep a line under
// 2 KiB even when every byte is escaped).
inline constexpr size_t kMaxJsonLine = 4096;

// A JSON line being built (at most kMaxJsonLine characters).
class JsonLine : public FixedText<kMaxJsonLine> {
 public:
  // `"` + the value escaped for JSON (ASCII only, \u00XX for the rest) + `"`, at most `cap`
  // input bytes (then `...` before the quote).
  void string(std::string_view value, size_t cap = kMaxJsonLine) noexcept;
  // "2026-12-07T20:15:01.123456Z"
  void timestamp(WallClock::time_point t) noexcept;
};

// The connection's flow_id: a 52-bit hash of client and server address and port.
uint64_t flow_id(const core::Decision& d) noexcept;

// The JSON line of one decision, and of a rate-limit summary (pure).
void format_json_decision(const core::Decision& d, WallClock::time_point t, JsonLine& out) noexcept;
void format_json_suppressed(uint64_t lines, std::span<const uint64_t, policy::kEventCount> by_event,
                            WallClock::time_point t, JsonLine& out) noexcept;

// The file the JSON lines go to. Thread-safe.
class JsonEventFile {
 public:
  // PATH (created 0640 if missing, appended to) or "-" (standard output).
  static Expected<std::unique_ptr<JsonEventFile>, std::string> open(const std::string& path);
  ~JsonEventFile();
  JsonEventFile(const JsonEventFile&) = delete;
  JsonEventFile& operator=(const JsonEventFile&) = delete;

  // The line and a newline, in one write. Errors are counted, not raised.
  void write(std::string_view line) noexcept;
  // Opens the path again (after logrotate moved the file); on failure the old file stays.
  Expected<bool, std::string> reopen();

  const std::string& path() const { return path_; }
  uint64_t write_errors() const;

 private:
  JsonEventFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  mutable std::mutex mutex_;  // guards fd_ against reopen()
  int fd_ = -1;
  uint64_t write_errors_ = 0;
};

}  // namespace sg::eventlog
