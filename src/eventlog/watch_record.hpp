#pragma once
// The text a watcher (`smtpguardctl watch`) reads: one record per decision, formatted only when
// somebody watches (eventlog/watch_hub.hpp). A record is one line, and for a line the gateway
// changed, the line before and after it, indented:
//
//   23:10:04.512 198.18.1.2:40000 -> 198.18.2.2:25 keyword_masked action=mask dir=s2c
//     subject="PIPELINING" detail=""
//     - 250-PIPELINING\r\n
//     + 250-XXXXXXXXXX\r\n
//
// (the first line is one line). The time is UTC. `ends-connection` follows the detail for the
// decisions that reset or drop the connection (resets, exception outcomes). A line the gateway
// removed shows `+` alone. Line text is escaped: printable ASCII other than `\` stays, `\` is
// `\\`, CR `\r`, LF `\n`, TAB `\t`, any other byte `\xNN`; at most kWatchLineCap input bytes, then
// `...`. Records a watcher missed because its queue was full are announced where they were lost:
//
//   23:10:05.001 dropped 17
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/decision.hpp"

namespace sg::eventlog {

inline constexpr size_t kWatchLineCap = 200;    // input bytes of a before/after line shown
inline constexpr size_t kWatchSubjectCap = 64;  // of a subject
inline constexpr size_t kWatchDetailCap = 160;  // of a detail

using WatchTime = std::chrono::system_clock::time_point;

// `bytes` escaped as described above, at most `cap` input bytes, then "..." when cut.
void append_watch_escaped(std::string& out, std::string_view bytes, size_t cap);
// "HH:MM:SS.mmm" (UTC).
void append_watch_time(std::string& out, WatchTime t);

// The record of one decision, with its trailing newline.
std::string format_watch_record(const core::Decision& d, WatchTime t);
// "HH:MM:SS.mmm dropped N\n".
std::string format_watch_dropped(uint64_t dropped, WatchTime t);

}  // namespace sg::eventlog
