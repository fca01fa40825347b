#include "eventlog/watch_record.hpp"

#include <arpa/inet.h>

#include <ctime>

#include "policy/events.hpp"
#include "util/ascii.hpp"

namespace sg::eventlog {
namespace {

void append_endpoint(std::string& out, const net::IpAddress& a, uint16_t port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (a.is_v4()) {
    if (inet_ntop(AF_INET, a.bytes.data() + 12, text, sizeof(text)) == nullptr) text[0] = '\0';
    out += text;
  } else {
    if (inet_ntop(AF_INET6, a.bytes.data(), text, sizeof(text)) == nullptr) text[0] = '\0';
    out += '[';
    out += text;
    out += ']';
  }
  out += ':';
  out += std::to_string(port);
}

void append_quoted(std::string& out, std::string_view value, size_t cap) {
  // The quote itself is escaped too, so that a subject cannot end its field.
  out += '"';
  const size_t n = std::min(value.size(), cap);
  for (size_t i = 0; i < n; ++i) {
    if (value[i] == '"') {
      out += "\\\"";
    } else {
      append_watch_escaped(out, value.substr(i, 1), 1);
    }
  }
  if (value.size() > cap) out += "...";
  out += '"';
}

}  // namespace

void append_watch_escaped(std::string& out, std::string_view bytes, size_t cap) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t n = std::min(bytes.size(), cap);
  for (size_t i = 0; i < n; ++i) {
    const char c = bytes[i];
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (is_printable(c)) {
          out += c;
        } else {
          const auto b = static_cast<uint8_t>(c);
          out += "\\x";
          out += kHex[b >> 4];
          out += kHex[b & 0xf];
        }
    }
  }
  if (bytes.size() > cap) out += "...";
}

void append_watch_time(std::string& out, WatchTime t) {
  const auto since_epoch = t.time_since_epoch();
  const auto secs = std::chrono::floor<std::chrono::seconds>(since_epoch);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - secs).count();
  const std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms));
  out += buf;
}

std::string format_watch_record(const core::Decision& d, WatchTime t) {
  std::string out;
  out.reserve(256 + d.before.size() + d.after.size());
  append_watch_time(out, t);
  out += ' ';
  append_endpoint(out, d.client, d.client_port);
  out += " -> ";
  append_endpoint(out, d.server, d.server_port);
  out += ' ';
  out += d.event < policy::Event::kCount ? policy::info(d.event).name : "unknown";
  out += " action=";
  out += d.action;
  out += d.dir == smtp::Dir::kClientToServer ? " dir=c2s" : " dir=s2c";
  out += " subject=";
  append_quoted(out, d.subject, kWatchSubjectCap);
  out += " detail=";
  append_quoted(out, d.detail, kWatchDetailCap);
  if (d.ends_connection) out += " ends-connection";
  out += '\n';
  if (d.edited) {
    out += "  - ";
    append_watch_escaped(out, d.before, kWatchLineCap);
    out += "\n  +";
    if (!d.after.empty()) {
      out += ' ';
      append_watch_escaped(out, d.after, kWatchLineCap);
    }
    out += '\n';
  }
  return out;
}

std::string format_watch_dropped(uint64_t dropped, WatchTime t) {
  std::string out;
  append_watch_time(out, t);
  out += " dropped ";
  out += std::to_string(dropped);
  out += '\n';
  return out;
}

}  // namespace sg::eventlog
